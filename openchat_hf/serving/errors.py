"""The serving area's exception, with the HTTP status and OpenAI error fields it maps to."""

from __future__ import annotations

from openchat_hf.errors import OpenChatError


class ServingError(OpenChatError):
    """A request or setup problem of the server; ``status``/``type``/``param``/``code`` shape the OpenAI error body,
    ``headers`` are sent with it (``Retry-After`` on 429 / 503)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def to_dict(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def internal_error() -> ServingError:
    """The generic 500 (details go to the log, never to the client)."""
    return ServingError("Internal server error.", status=500, type="server_error", code="internal_error")


def shutting_down(retry_after: int = 5) -> ServingError:
    """What a request gets when the server is stopping (new ones at once, running ones after the grace period)."""
    return ServingError(
        "The server is shutting down; retry on another replica or later.",
        status=503,
        type="server_error",
        code="server_shutting_down",
        headers={"Retry-After": str(retry_after)},
    )
