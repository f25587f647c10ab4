"""Proxy to any OpenAI-compatible server (vLLM, SGLang, TGI, another openchat-hf) through ``/v1/completions``.

The prompt is rendered and tokenized here and sent as token ids (``prompt_format="ids"``, the default: no second
BOS from the upstream's tokenizer) or as text (``"text"``, for servers that take only strings).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from openchat_hf.serving.backends.base import Backend, GenerationEvent, GenerationRequest
from openchat_hf.serving.errors import ServingError


class OpenAIBackend(Backend):
    """Stream ``/v1/completions`` of an upstream OpenAI-compatible server."""

    name = "openai"
    response_formats = ("text", "json_object", "json_schema")  # passed upstream as a json_schema response_format

    def __init__(
        self,
        url: str,
        tokenizer: Any,
        config: Any,
        *,
        model: str | None = None,
        api_key: str | None = None,
        prompt_format: str = "ids",
        timeout: float = 600,
    ) -> None:
        super().__init__(tokenizer, config)
        import openai

        if prompt_format not in ("ids", "text"):
            raise ServingError(f"prompt_format must be 'ids' or 'text', got {prompt_format!r}.")
        self.url = url.rstrip("/")
        self.model = model
        self.prompt_format = prompt_format
        self.client = openai.AsyncOpenAI(base_url=self.url, api_key=api_key or "none", timeout=timeout, max_retries=0)
        self._openai = openai

    async def start(self) -> None:
        if self.model is None:
            try:
                models = await self.client.models.list()
            except self._openai.OpenAIError as err:
                raise ServingError(f"Cannot list the models of {self.url}: {err}", status=502) from None
            if not models.data:
                raise ServingError(f"{self.url} serves no model; pass --backend-model.", status=502)
            self.model = models.data[0].id

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        if self.model is None:
            await self.start()
        p = request.params
        prompt = request.prompt_ids if self.prompt_format == "ids" else request.prompt_text
        kwargs: dict[str, Any] = {"stop": p.stop} if p.stop else {}
        if p.seed is not None:
            kwargs["seed"] = p.seed
        if p.json_schema is not None:  # vLLM / SGLang / openchat-hf take response_format on /v1/completions too
            schema = {"name": "response", "schema": p.json_schema}
            kwargs["extra_body"] = {"response_format": {"type": "json_schema", "json_schema": schema}}
        common = dict(
            model=self.model,
            prompt=prompt,
            max_tokens=p.max_tokens,
            temperature=p.temperature,
            top_p=p.top_p,
            presence_penalty=p.presence_penalty,
            frequency_penalty=p.frequency_penalty,
            **kwargs,
        )
        count = 0
        try:
            if not request.incremental:  # one JSON answer: no SSE parsing, one event
                reply = await self.client.completions.create(**common)
                choice = reply.choices[0]
                text = choice.text or ""
                if reply.usage is not None:
                    count = reply.usage.completion_tokens
                else:  # an upstream without usage: count the answer with our tokenizer
                    count = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
                yield GenerationEvent(text, [], count, "length" if choice.finish_reason == "length" else "stop")
                return
            stream = await self.client.completions.create(
                **common, stream=True, stream_options={"include_usage": True}
            )
            finish = None
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        count = chunk.usage.completion_tokens
                    for choice in chunk.choices:
                        count += 0 if chunk.usage is not None else 1
                        finish = choice.finish_reason or finish
                        if choice.text or choice.finish_reason is None:
                            yield GenerationEvent(choice.text or "", [], count, None)
            yield GenerationEvent("", [], count, "length" if finish == "length" else "stop")
        except self._openai.APIStatusError as err:
            status = 400 if err.status_code in (400, 413, 422) else 502
            raise ServingError(
                f"The upstream server refused: {err.message}", status=status, type="upstream_error"
            ) from None
        except self._openai.APIConnectionError as err:
            raise ServingError(f"Cannot reach {self.url}: {err}", status=502, type="upstream_error") from None

    async def close(self) -> None:
        await self.client.close()
