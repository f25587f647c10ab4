"""The OpenAI routes (``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``), ``/health``, ``/metrics``
and the key-protected ``/openapi.json`` / ``/docs``."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from openchat_hf.serving.body import read_json
from openchat_hf.serving.errors import ServingError
from openchat_hf.serving.protocol import ChatCompletionRequest, CompletionRequest, parse_request
from openchat_hf.serving.responses import Completion

LONG_PROMPT_CHARS = 20_000  # longer prompts are tokenized off the event loop; shorter ones cost less than a hop
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


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


def build_router(service: Any, keys: Any, json_response: type) -> APIRouter:
    """The routes of one app, bound to its :class:`~openchat_hf.serving.service.CompletionService`."""
    router = APIRouter()
    backend, config = service.backend, service.config

    async def answer(request: Request, req: Any, prompt_ids: list[int], prompt_text: str, *, chat: bool, raw: dict):
        params = service.sampling(req, len(prompt_ids))
        n = req.n or 1
        ticket = service.admit(n, len(prompt_ids))
        gen = service.choices(ticket, prompt_ids, prompt_text, params, n, strip=chat, stream=bool(req.stream))
        completion = Completion(service, gen, n=n, chat=chat, prompt_tokens=len(prompt_ids), raw=raw)
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(
                completion.events(include_usage), media_type="text/event-stream", headers=STREAM_HEADERS
            )
        return json_response(await until_disconnect(request, completion.collect()))

    async def body(request: Request) -> Any:
        keys.authorize(request.headers.get("authorization"))
        return await read_json(request, config.max_request_bytes)

    @router.get("/health")
    async def health():
        status = "draining" if service.admission.draining else "ok"
        return json_response({"status": status, "model": config.model_name, "backend": backend.name})

    @router.get("/metrics")
    async def metrics():
        content, media_type = service.metrics.render()
        return Response(content, media_type=media_type)

    @router.get("/v1/models")
    async def models(request: Request):
        keys.authorize(request.headers.get("authorization"))
        entry = {"id": config.model_name, "object": "model", "created": 0, "owned_by": "openchat-hf"}
        entry["max_model_len"] = service.max_context
        entry["response_formats"] = list(backend.response_formats)
        return json_response({"object": "list", "data": [entry]})

    @router.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        from openchat_hf.templates import TemplateError

        raw = await body(request)
        req = parse_request(raw, ChatCompletionRequest, unsupported=backend.unsupported_params)
        service.check_model(req.model)
        messages = [{"role": m.role, "content": m.text()} for m in req.messages]
        template = service.template
        try:
            if sum(len(m["content"]) for m in messages) > LONG_PROMPT_CHARS:
                tokenized = await asyncio.to_thread(template.tokenize, messages, add_generation_prompt=True)
            else:
                tokenized = template.tokenize(messages, add_generation_prompt=True)
            prompt_text = template.render(messages, add_generation_prompt=True).text
        except TemplateError as err:
            raise ServingError(str(err), param="messages", code="invalid_messages") from None
        return await answer(request, req, tokenized.input_ids, prompt_text, chat=True, raw=raw)

    @router.post("/v1/completions")
    async def completions(request: Request):
        raw = await body(request)
        req = parse_request(raw, CompletionRequest, unsupported=backend.unsupported_params)
        service.check_model(req.model)
        tokenizer = backend.tokenizer
        if isinstance(req.prompt, str):
            prompt_text = req.prompt
            if len(prompt_text) > LONG_PROMPT_CHARS:
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
        return await answer(request, req, prompt_ids, prompt_text, chat=False, raw=raw)

    return router


def build_docs_router(app: Any, keys: Any, json_response: type) -> APIRouter:
    """``/openapi.json`` and ``/docs`` (Swagger UI), behind the API key when keys are set."""
    from fastapi.openapi.docs import get_swagger_ui_html

    router = APIRouter()

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request):
        keys.authorize(request.headers.get("authorization"))
        return json_response(app.openapi())

    @router.get("/docs", include_in_schema=False)
    async def docs(request: Request):
        keys.authorize(request.headers.get("authorization"))
        return get_swagger_ui_html(openapi_url="/openapi.json", title="openchat-hf")

    return router
