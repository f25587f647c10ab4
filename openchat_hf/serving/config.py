"""The server's settings (the CLI builds a :class:`ServerConfig` from its options)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from openchat_hf.serving.errors import ServingError


@dataclass
class ServerConfig:
    """Server settings.

    Attributes:
        model_name: the name clients pass as ``model``.
        model_type: the OpenChat model type (default: ``config.openchat_model_type`` of the checkpoint).
        api_keys: accepted bearer tokens; empty means no authentication.
        log_conversations: log each request (with its messages and ``user``) and answer (off by default).
        cors_origins: origins allowed by CORS (none by default).
        allowed_hosts: accepted ``Host`` header names (against DNS rebinding); empty accepts any.
        max_request_bytes: request bodies above this size get a 413.
        max_context: context length in tokens (default: the model's, from ``modeling.context.context_length``,
            capped by the model type's ``max_length`` unless the model was extended beyond it).
        max_batch_size: sequences generated at once (default: the backend's ``max_batch_size``, else 32).
        max_queue: sequences that may wait for a place in the batch; beyond that a request gets 429.
        shutdown_grace: seconds running requests get to finish after SIGTERM before they are ended with a 503.
        stream_interval: tokens per streamed chunk (embedded backend; 1 = every token, as OpenAI). Larger values
            send fewer, longer chunks: less CPU per token in the server and the clients, later text on screen.
    """

    model_name: str = "openchat"
    model_type: str | None = None
    api_keys: Sequence[str] = field(default_factory=tuple)
    log_conversations: bool = False
    cors_origins: Sequence[str] = field(default_factory=tuple)
    allowed_hosts: Sequence[str] = field(default_factory=tuple)
    max_request_bytes: int = 1_000_000
    max_context: int | None = None
    max_batch_size: int | None = None
    max_queue: int = 128
    shutdown_grace: float = 30.0
    stream_interval: int = 1


def check_stream_interval(interval: int, backend: str) -> None:
    """``stream_interval`` is at least 1, and above 1 only for the embedded backend (a proxy relays its upstream's
    chunks as they come)."""
    if interval < 1:
        raise ServingError("--stream-interval must be at least 1.")
    if interval > 1 and backend != "transformers":
        raise ServingError(
            f"--stream-interval applies to the embedded backend only; the {backend} upstream chunks its own stream."
        )
