"""What the routes call: prompts through the one chat template, checked sampling settings, and the choices of a
request generated under admission control, with their metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from openchat_hf.serving.admission import ABORT, Admission, Ticket
from openchat_hf.serving.backends.base import Backend, GenerationRequest, SamplingParams
from openchat_hf.serving.config import ServerConfig, check_stream_interval
from openchat_hf.serving.errors import ServingError, shutting_down
from openchat_hf.serving.metrics import Metrics
from openchat_hf.serving.text import OutputFilter

conversation_logger = logging.getLogger("openchat_hf.serving.conversations")

MIN_TEMPERATURE = 0.01  # as vLLM: smaller positive temperatures overflow the scaled logits
_END = object()


def resolve_model_type(backend: Backend, model_type: str | None) -> str:
    """The checkpoint's recorded model type; ``model_type`` must agree with it (see ``folder_info.model_type_of``)."""
    from openchat_hf.folder_info import resolve_model_type as resolve

    recorded = getattr(backend.config, "openchat_model_type", None)
    architecture = getattr(backend.config, "model_type", None)
    return resolve(recorded, model_type, architecture=architecture, source="The checkpoint").name


def serving_context(model_type: Any, model_config: Any, requested: int | None = None) -> int:
    """The context the server enforces: ``requested`` if given (never beyond the model's), else the model type's
    ``max_length``, raised to the model's own context when the checkpoint was extended beyond it (e.g. 8192 by
    ``dynamic`` RoPE). The model's context comes from :func:`openchat_hf.modeling.context.context_length`."""
    from openchat_hf.modeling.context import context_length

    model = context_length(model_config)
    if requested is not None:
        if model is not None and requested > model:
            raise ServingError(f"--max-context {requested} is beyond the model's context of {model} tokens.")
        return requested
    extended = getattr(model_config, "openchat_context_extension", None)
    if model is None:
        return model_type.max_length
    if isinstance(extended, dict) and extended.get("max_length"):
        return model
    return min(model_type.max_length, model)


def _tokenization(backend: Backend) -> str:
    """The tokenization mode the checkpoint records (``openchat_hf.json``): prompts are built the way it was trained."""
    from pathlib import Path

    from openchat_hf.folder_info import read_folder_info

    folder = str(getattr(backend.tokenizer, "name_or_path", "") or "")
    return read_folder_info(folder).get("tokenization", "joint") if folder and Path(folder).is_dir() else "joint"


class CompletionService:
    """Request handling shared by the routes (no HTTP here)."""

    def __init__(self, backend: Backend, config: ServerConfig) -> None:
        from openchat_hf.model_types import get_model_type
        from openchat_hf.templates import ChatTemplate, eot_token_id

        self.backend = backend
        self.config = config
        check_stream_interval(config.stream_interval, backend.name)
        self.model_type = get_model_type(resolve_model_type(backend, config.model_type))
        self.template = ChatTemplate(self.model_type, backend.tokenizer, tokenization=_tokenization(backend))
        eot_token_id(backend.tokenizer, self.model_type)  # fail early on a tokenizer without the EOT token
        self.max_context = serving_context(self.model_type, backend.config, config.max_context)
        cap = config.max_batch_size or getattr(backend, "max_batch_size", None) or 32
        self.admission = Admission(cap, config.max_queue)
        self.metrics = Metrics(self.admission, backend)

    def check_model(self, model: str) -> None:
        if model != self.config.model_name:
            raise ServingError(
                f"The model '{model}' does not exist; this server serves '{self.config.model_name}'.",
                status=404,
                param="model",
                code="model_not_found",
            )

    def sampling(self, req: Any, prompt_tokens: int) -> SamplingParams:
        room = self.max_context - prompt_tokens
        if room <= 0:
            raise ServingError(
                f"The prompt has {prompt_tokens} tokens but the context is {self.max_context} tokens; "
                "shorten the conversation.",
                param="messages",
                code="context_length_exceeded",
            )
        max_tokens = req.max_tokens or req.max_completion_tokens
        if max_tokens is not None and max_tokens > room:
            raise ServingError(
                f"The prompt has {prompt_tokens} tokens and max_tokens is {max_tokens}, more than the context of "
                f"{self.max_context} tokens; lower max_tokens to at most {room}.",
                param="max_tokens",
                code="context_length_exceeded",
            )
        temperature = 1.0 if req.temperature is None else req.temperature
        if 0 < temperature < MIN_TEMPERATURE:
            temperature = MIN_TEMPERATURE
        params = SamplingParams(
            max_tokens=max_tokens or room,
            temperature=temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            seed=req.seed,
            presence_penalty=req.presence_penalty or 0.0,
            frequency_penalty=req.frequency_penalty or 0.0,
            stop=req.stop_list(),
            json_schema=req.response_format.schema_or_none() if req.response_format is not None else None,
        )
        self.backend.prepare(params)
        return params

    def admit(self, n: int, prompt_tokens: int) -> Ticket:
        """Reserve places for ``n`` sequences before the response starts (429 when the queue is full)."""
        ticket = self.admission.reserve(n)
        self.metrics.prompt_tokens.inc(prompt_tokens)
        return ticket

    async def choices(
        self,
        ticket: Ticket,
        prompt_ids: list[int],
        prompt_text: str,
        params: SamplingParams,
        n: int,
        *,
        strip: bool,
        stream: bool,
    ) -> AsyncIterator[tuple[int, str, str | None, int]]:
        """Run ``n`` choices concurrently; yield ``(index, text, finish_reason, completion_tokens)``.

        Unless streaming or watching for stop strings, only the final text is needed, so the backend is asked for
        it in one piece (no per-token events to hand over and wake up for). After the shutdown grace the request
        ends with a 503 :class:`ServingError`.
        """
        incremental = stream or bool(params.stop)
        # Stop strings are looked for token by token (usage then counts no token past the stop).
        interval = self.config.stream_interval if stream and not params.stop else 1
        queue: asyncio.Queue = asyncio.Queue()
        started = time.perf_counter()
        metrics = self.metrics

        async def pump(index: int) -> None:
            seed = None if params.seed is None else params.seed + index
            choice_params = SamplingParams(**{**params.__dict__, "seed": seed})
            out = OutputFilter(params.stop, self.template.strip_completion if strip else None)
            finish, tokens, last, last_tokens = None, 0, None, 0
            async with self.admission.slot(ticket):
                request = GenerationRequest(prompt_ids, prompt_text, choice_params, incremental, interval)
                events = self.backend.stream(request)
                try:
                    async for event in events:
                        tokens = event.completion_tokens
                        if incremental and tokens > last_tokens:
                            moment = time.perf_counter()
                            if last is None:
                                metrics.ttft.observe(moment - started)
                            else:
                                metrics.itl.observe((moment - last) / (tokens - last_tokens))
                            last, last_tokens = moment, tokens
                        text, stopped = out.feed(event.text)
                        if text:
                            await queue.put((index, text, None, tokens))
                        if stopped or event.finish_reason:
                            finish = "stop" if stopped else event.finish_reason
                            break
                    metrics.generation_tokens.inc(tokens)
                    metrics.success.labels(finish_reason=finish or "stop").inc()
                    await queue.put((index, out.flush(), finish or "stop", tokens))
                except Exception as err:  # handed to the consumer, which raises it in the request's context
                    await queue.put((index, err, None, 0))
                finally:
                    await events.aclose()
            await queue.put((index, _END, None, 0))

        self.admission.listen(queue)
        tasks = [asyncio.create_task(pump(i)) for i in range(n)]
        try:
            remaining = n
            while remaining:
                index, text, finish, tokens = await queue.get()
                if text is _END:
                    remaining -= 1
                elif text is ABORT:
                    raise shutting_down()
                elif isinstance(text, Exception):
                    raise text
                else:
                    yield index, text, finish, tokens
            metrics.duration.observe(time.perf_counter() - started)
        finally:
            self.admission.forget(queue)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            ticket.release_unused()

    def log_conversation(self, request: Any, answers: list[str]) -> None:
        if self.config.log_conversations:
            conversation_logger.info(json.dumps({"request": request, "answers": answers}, ensure_ascii=False))
