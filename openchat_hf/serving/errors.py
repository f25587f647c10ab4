"""The serving area's exception, with the HTTP status and OpenAI error fields it maps to."""

from __future__ import annotations

from openchat_hf.errors import OpenChatError


class ServingError(OpenChatError):
    """A request or setup problem of the server; ``status``/``type``/``param``/``code`` shape the OpenAI error body."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.param = param
        self.code = code

    def to_dict(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
