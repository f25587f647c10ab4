"""The FastAPI app: OpenAI's ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/models``, plus ``/health``.

Prompts are rendered with :class:`~openchat_hf.templates.ChatTemplate` (the one template) and counted with the
checkpoint's tokenizer for every backend, so ``usage`` and the context check are exact; the backend only generates.
Client mistakes get OpenAI-shaped 4xx errors; anything unexpected is logged and answered with a generic 500.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import Request

from openchat_hf.serving.backends.base import Backend, GenerationRequest, SamplingParams
from openchat_hf.serving.errors import ServingError
from openchat_hf.serving.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    new_id,
    now,
    parse_request,
    usage,
)
from openchat_hf.serving.text import OutputFilter

logger = logging.getLogger(__name__)
conversation_logger = logging.getLogger("openchat_hf.serving.conversations")

_END = object()


@dataclass
class ServerConfig:
    """Server settings (the CLI builds this from its options).

    Attributes:
        model_name: the name clients pass as ``model``.
        model_type: the OpenChat model type (default: ``config.openchat_model_type`` of the checkpoint).
        api_keys: accepted bearer tokens; empty means no authentication.
        log_conversations: log each request's messages and answer (off by default).
        cors_origins: origins allowed by CORS (none by default).
        max_request_bytes: request bodies above this size get a 413.
        max_context: context length in tokens (default: min of the model type's and the model config's).
    """

    model_name: str = "openchat"
    model_type: str | None = None
    api_keys: Sequence[str] = field(default_factory=tuple)
    log_conversations: bool = False
    cors_origins: Sequence[str] = field(default_factory=tuple)
    max_request_bytes: int = 1_000_000
    max_context: int | None = None


def _model_context(config: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def resolve_model_type(backend: Backend, model_type: str | None) -> str:
    """The checkpoint's recorded model type; ``model_type`` must agree with it (see ``folder_info.model_type_of``)."""
    from openchat_hf.folder_info import resolve_model_type as resolve

    recorded = getattr(backend.config, "openchat_model_type", None)
    architecture = getattr(backend.config, "model_type", None)
    return resolve(recorded, model_type, architecture=architecture, source="The checkpoint").name


def _tokenization(backend: Backend) -> str:
    """The tokenization mode the checkpoint records (``openchat_hf.json``): prompts are built the way it was trained."""
    from pathlib import Path

    from openchat_hf.folder_info import read_folder_info

    folder = str(getattr(backend.tokenizer, "name_or_path", "") or "")
    return read_folder_info(folder).get("tokenization", "joint") if folder and Path(folder).is_dir() else "joint"


class _Server:
    """Request handling shared by the routes."""

    def __init__(self, backend: Backend, config: ServerConfig) -> None:
        from openchat_hf.model_types import get_model_type
        from openchat_hf.templates import ChatTemplate, eot_token_id

        self.backend = backend
        self.config = config
        self.model_type = get_model_type(resolve_model_type(backend, config.model_type))
        self.template = ChatTemplate(self.model_type, backend.tokenizer, tokenization=_tokenization(backend))
        eot_token_id(backend.tokenizer, self.model_type)  # fail early on a tokenizer without the EOT token
        limits = [v for v in (config.max_context, self.model_type.max_length, _model_context(backend.config)) if v]
        self.max_context = config.max_context or min(limits)
        self.api_keys = [k.encode() for k in config.api_keys if k]

    # ------------------------------------------------------------------------------------------ checks
    def authorize(self, header: str | None) -> None:
        if not self.api_keys:
            return
        token = header[7:].strip() if header and header[:7].lower() == "bearer " else ""
        ok = False
        for key in self.api_keys:  # compare against every key: no early exit, constant time per key
            ok |= hmac.compare_digest(token.encode(), key)
        if not ok:
            raise ServingError(
                "Missing or invalid API key: send 'Authorization: Bearer <key>'.",
                status=401,
                code="invalid_api_key",
            )

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
        return SamplingParams(
            max_tokens=max_tokens or room,
            temperature=1.0 if req.temperature is None else req.temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            seed=req.seed,
            presence_penalty=req.presence_penalty or 0.0,
            frequency_penalty=req.frequency_penalty or 0.0,
            stop=req.stop_list(),
        )

    # ------------------------------------------------------------------------------------- generation
    async def choices(
        self, prompt_ids: list[int], prompt_text: str, params: SamplingParams, n: int, strip: bool, stream: bool
    ) -> AsyncIterator[tuple[int, str, str | None, int]]:
        """Run ``n`` choices concurrently; yield ``(index, text, finish_reason, completion_tokens)``.

        Unless streaming or watching for stop strings, only the final text is needed, so the backend is asked for
        it in one piece (no per-token events to hand over and wake up for).
        """
        incremental = stream or bool(params.stop)
        queue: asyncio.Queue = asyncio.Queue()

        async def pump(index: int) -> None:
            seed = None if params.seed is None else params.seed + index
            choice_params = SamplingParams(**{**params.__dict__, "seed": seed})
            out = OutputFilter(params.stop, self.template.strip_completion if strip else None)
            stream = self.backend.stream(GenerationRequest(prompt_ids, prompt_text, choice_params, incremental))
            finish, tokens = None, 0
            try:
                async for event in stream:
                    tokens = event.completion_tokens
                    text, stopped = out.feed(event.text)
                    if text:
                        await queue.put((index, text, None, tokens))
                    if stopped or event.finish_reason:
                        finish = "stop" if stopped else event.finish_reason
                        break
                await queue.put((index, out.flush(), finish or "stop", tokens))
            except Exception as err:  # handed to the consumer, which raises it in the request's context
                await queue.put((index, err, None, 0))
            finally:
                await stream.aclose()
                await queue.put((index, _END, None, 0))

        tasks = [asyncio.create_task(pump(i)) for i in range(n)]
        try:
            remaining = n
            while remaining:
                index, text, finish, tokens = await queue.get()
                if text is _END:
                    remaining -= 1
                elif isinstance(text, Exception):
                    raise text
                else:
                    yield index, text, finish, tokens
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def log_conversation(self, request: Any, answers: list[str]) -> None:
        if self.config.log_conversations:
            conversation_logger.info(json.dumps({"request": request, "answers": answers}, ensure_ascii=False))


# ------------------------------------------------------------------------------------------------- the app
def create_app(backend: Backend, config: ServerConfig | None = None, **overrides: Any) -> Any:
    """Build the FastAPI app serving ``backend`` (``overrides`` are :class:`ServerConfig` fields)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import JSONResponse as StarletteJSONResponse
    from fastapi.responses import StreamingResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    class JSONResponse(StarletteJSONResponse):
        """Starlette's compact UTF-8 JSON, serialised with orjson (several times faster)."""

        def render(self, content: Any) -> bytes:
            return orjson.dumps(content)

    config = config or ServerConfig()
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise TypeError(f"create_app() got an unknown option {key!r}; see ServerConfig.")
        setattr(config, key, value)
    server = _Server(backend, config)

    @asynccontextmanager
    async def lifespan(app):
        await backend.start()
        try:
            yield
        finally:
            await backend.close()

    app = FastAPI(
        title="openchat-hf",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        default_response_class=JSONResponse,
    )
    app.state.server = server
    app.state.backend = backend
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
        )

    def error_response(err: ServingError) -> JSONResponse:
        return JSONResponse(err.to_dict(), status_code=err.status)

    @app.exception_handler(ServingError)
    async def _serving_error(request: Request, err: ServingError):
        return error_response(err)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code)
        return error_response(ServingError(str(err.detail), status=err.status_code, code=code))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError):
        return error_response(ServingError("Invalid request.", code="invalid_value"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception):
        logger.exception("Unexpected error on %s", request.url.path)
        return error_response(ServingError("Internal server error.", status=500, type="server_error"))

    async def read_json(request: Request) -> Any:
        server.authorize(request.headers.get("authorization"))
        limit = config.max_request_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ServingError(f"The request body is larger than {limit} bytes.", status=413, code="too_large")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ServingError(f"The request body is larger than {limit} bytes.", status=413, code="too_large")
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise ServingError("The request body is not valid JSON.", code="invalid_json") from None

    async def until_disconnect(request: Request, coro) -> Any:
        """Await ``coro``; cancel it (and so the generation) when the client goes away."""
        task = asyncio.ensure_future(coro)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=0.25)
                if done:
                    return task.result()
                if await request.is_disconnected():
                    task.cancel()
                    raise ServingError("Client disconnected.", status=499, code="client_closed")
        finally:
            if not task.done():
                task.cancel()

    def sse(payload: Any) -> bytes:
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    def respond(request: Request, req: Any, prompt_ids, prompt_text, params, *, chat: bool, raw: dict):
        n = req.n or 1
        rid, created = new_id("chatcmpl" if chat else "cmpl"), now()
        obj = "chat.completion" if chat else "text_completion"
        gen = server.choices(prompt_ids, prompt_text, params, n, strip=chat, stream=bool(req.stream))

        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)

            def chunk(choices: list, extra: dict | None = None) -> bytes:
                body = {"id": rid, "object": obj + (".chunk" if chat else ""), "created": created}
                return sse({**body, "model": config.model_name, "choices": choices, **(extra or {})})

            def choice(index: int, text: str | None, finish: str | None) -> dict:
                if chat:
                    delta = {} if text is None else {"content": text}
                    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
                return {"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}

            async def events() -> AsyncIterator[bytes]:
                completion, answers = [0] * n, [""] * n
                try:
                    if chat:
                        for i in range(n):
                            role = {"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None}
                            yield chunk([{**role, "finish_reason": None}])
                    async for index, text, finish, tokens in gen:
                        completion[index] = tokens
                        answers[index] += text
                        if text:
                            yield chunk([choice(index, text, None)])
                        if finish:
                            yield chunk([choice(index, None, finish)])
                    if include_usage:
                        yield chunk([], {"usage": usage(len(prompt_ids), sum(completion))})
                    server.log_conversation(raw, answers)
                except ServingError as err:
                    yield sse(err.to_dict())
                except Exception:
                    logger.exception("Generation failed during a stream")
                    yield sse(ServingError("Internal server error.", status=500, type="server_error").to_dict())
                finally:
                    await gen.aclose()
                yield b"data: [DONE]\n\n"

            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

        async def collect() -> dict:
            texts, finishes, completion = [""] * n, [None] * n, [0] * n
            async with _closing(gen):
                async for index, text, finish, tokens in gen:
                    texts[index] += text
                    completion[index] = tokens
                    finishes[index] = finish or finishes[index]
            server.log_conversation(raw, texts)
            if chat:
                choices = [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": texts[i]},
                        "logprobs": None,
                        "finish_reason": finishes[i],
                    }
                    for i in range(n)
                ]
            else:
                choices = [
                    {"index": i, "text": texts[i], "logprobs": None, "finish_reason": finishes[i]} for i in range(n)
                ]
            return {
                "id": rid,
                "object": obj,
                "created": created,
                "model": config.model_name,
                "choices": choices,
                "usage": usage(len(prompt_ids), sum(completion)),
                "system_fingerprint": None,
            }

        return until_disconnect(request, collect())

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": config.model_name, "backend": backend.name}

    @app.get("/v1/models")
    async def models(request: Request):
        server.authorize(request.headers.get("authorization"))
        entry = {"id": config.model_name, "object": "model", "created": 0, "owned_by": "openchat-hf"}
        entry["max_model_len"] = server.max_context
        return {"object": "list", "data": [entry]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        raw = await read_json(request)
        req = parse_request(raw, ChatCompletionRequest, unsupported=backend.unsupported_params)
        server.check_model(req.model)
        messages = [{"role": m.role, "content": m.text()} for m in req.messages]
        from openchat_hf.templates import TemplateError

        try:
            if sum(len(m["content"]) for m in messages) > 20_000:  # long prompts: tokenize off the event loop
                tokenized = await asyncio.to_thread(server.template.tokenize, messages, add_generation_prompt=True)
            else:  # short ones take less time than a thread hop
                tokenized = server.template.tokenize(messages, add_generation_prompt=True)
            prompt_text = server.template.render(messages, add_generation_prompt=True).text
        except TemplateError as err:
            raise ServingError(str(err), param="messages", code="invalid_messages") from None
        params = server.sampling(req, len(tokenized.input_ids))
        result = respond(request, req, tokenized.input_ids, prompt_text, params, chat=True, raw=raw)
        return JSONResponse(await result) if asyncio.iscoroutine(result) else result

    @app.post("/v1/completions")
    async def completions(request: Request):
        raw = await read_json(request)
        req = parse_request(raw, CompletionRequest, unsupported=backend.unsupported_params)
        server.check_model(req.model)
        tokenizer = backend.tokenizer
        if isinstance(req.prompt, str):
            prompt_text = req.prompt
            if len(prompt_text) > 20_000:
                prompt_ids = (await asyncio.to_thread(tokenizer, prompt_text, add_special_tokens=False))["input_ids"]
            else:
                prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        else:
            prompt_ids = list(req.prompt)
            if max(prompt_ids) >= len(tokenizer):
                raise ServingError(f"Token ids must be below {len(tokenizer)}.", param="prompt", code="invalid_value")
            prompt_text = tokenizer.decode(prompt_ids)
        if not prompt_ids:
            raise ServingError("The prompt is empty after tokenization.", param="prompt", code="invalid_value")
        params = server.sampling(req, len(prompt_ids))
        result = respond(request, req, prompt_ids, prompt_text, params, chat=False, raw=raw)
        return JSONResponse(await result) if asyncio.iscoroutine(result) else result

    return app


@asynccontextmanager
async def _closing(gen):
    try:
        yield gen
    finally:
        await gen.aclose()
