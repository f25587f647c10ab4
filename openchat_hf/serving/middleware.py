"""The outermost guard of every request: the ``Host`` allow-list, and a last-resort 500 that keeps the connection.

Starlette's own last-resort handler answers 500 and then re-raises, so uvicorn logs a traceback and drops the
keep-alive connection (the client's next request fails too). Here an unexpected error is logged once and answered
with the OpenAI-shaped generic 500; the connection stays usable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from openchat_hf.serving.errors import ServingError, internal_error
from openchat_hf.serving.security import check_host

logger = logging.getLogger("openchat_hf.serving")


class GuardMiddleware:
    """Pure ASGI middleware (no buffering of streams)."""

    def __init__(self, app: Any, *, allowed_hosts: Sequence[str] = (), on_error: Callable | None = None) -> None:
        self.app = app
        self.allowed_hosts = tuple(allowed_hosts)
        self.on_error = on_error

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def guarded_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            if self.allowed_hosts:
                host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
                check_host(host, self.allowed_hosts)
            await self.app(scope, receive, guarded_send)
        except ServingError as err:
            if not started:
                await self._send_error(send, err)
        except Exception:
            logger.exception("Unexpected error on %s", scope.get("path"))
            if not started:
                await self._send_error(send, internal_error())

    async def _send_error(self, send, err: ServingError) -> None:
        if self.on_error is not None:
            self.on_error(err.status, err.code)
        body = orjson.dumps(err.to_dict())
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
        await send({"type": "http.response.start", "status": err.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
