"""The FastAPI app: OpenAI's ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/models``, plus ``/health``
and ``/metrics``. :func:`create_app` only assembles the parts, each in its own module:

* :mod:`~openchat_hf.serving.config` (settings), :mod:`~openchat_hf.serving.service` (prompts, sampling, choices),
* :mod:`~openchat_hf.serving.admission` (batch cap, bounded queue, shutdown drain), :mod:`~openchat_hf.serving.metrics`,
* :mod:`~openchat_hf.serving.routes`, :mod:`~openchat_hf.serving.responses` (JSON and SSE bodies),
* :mod:`~openchat_hf.serving.body` / :mod:`~openchat_hf.serving.security` (request checks) and
  :mod:`~openchat_hf.serving.middleware` (the last-resort 500 that keeps the connection).

Prompts are rendered with :class:`~openchat_hf.templates.ChatTemplate` (the one template) and counted with the
checkpoint's tokenizer for every backend, so ``usage`` and the context check are exact; the backend only generates.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import Request

from openchat_hf.serving.backends.base import Backend
from openchat_hf.serving.config import ServerConfig
from openchat_hf.serving.errors import ServingError
from openchat_hf.serving.service import CompletionService, resolve_model_type

__all__ = ["ServerConfig", "create_app", "resolve_model_type"]


def _json_response_class():
    from fastapi.responses import JSONResponse

    class OrjsonResponse(JSONResponse):
        """Starlette's compact UTF-8 JSON, serialised with orjson (several times faster)."""

        def render(self, content: Any) -> bytes:
            return orjson.dumps(content)

    return OrjsonResponse


def _config(config: ServerConfig | None, overrides: dict[str, Any]) -> ServerConfig:
    config = config or ServerConfig()
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise TypeError(f"create_app() got an unknown option {key!r}; see ServerConfig.")
        setattr(config, key, value)
    return config


def _error_handlers(app: Any, service: CompletionService, json_response: type) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    def error_response(err: ServingError):
        service.metrics.error(err.status, err.code)
        return json_response(err.to_dict(), status_code=err.status, headers=err.headers or None)

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


def create_app(backend: Backend, config: ServerConfig | None = None, **overrides: Any) -> Any:
    """Build the FastAPI app serving ``backend`` (``overrides`` are :class:`ServerConfig` fields).

    ``app.state.service.admission.begin_drain(grace)`` starts the SIGTERM drain (the CLI calls it).
    """
    from fastapi import FastAPI
    from fastapi.middleware.cors import CORSMiddleware

    from openchat_hf.serving.middleware import GuardMiddleware
    from openchat_hf.serving.routes import build_docs_router, build_router
    from openchat_hf.serving.security import ApiKeys

    config = _config(config, overrides)
    service = CompletionService(backend, config)
    keys = ApiKeys(config.api_keys)
    json_response = _json_response_class()

    @asynccontextmanager
    async def lifespan(app):
        service.admission.bind(asyncio.get_running_loop())
        await backend.start()
        try:
            yield
        finally:
            service.admission.abort()
            await backend.close()

    app = FastAPI(
        title="openchat-hf",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        default_response_class=json_response,
    )
    app.state.service = service
    app.state.backend = backend
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
        )
    app.add_middleware(GuardMiddleware, allowed_hosts=config.allowed_hosts, on_error=service.metrics.error)
    _error_handlers(app, service, json_response)
    app.include_router(build_router(service, keys, json_response))
    app.include_router(build_docs_router(app, keys, json_response))
    return app
