"""The small interface every backend implements: stream the completion of one tokenized prompt."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from openchat_hf.serving.errors import ServingError


@dataclass
class SamplingParams:
    """Per-request generation settings (``temperature == 0`` means greedy)."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    stop: list[str] = field(default_factory=list)
    json_schema: dict | bool | None = None  # response_format: the JSON schema the answer must match


@dataclass
class GenerationRequest:
    """One sequence to generate: the prompt as ids (and as text, for text-only upstreams) and its settings.

    ``incremental=False`` says the caller only needs the final result (a non-streaming request without stop
    strings): a backend may then send a single event with the whole text instead of one per token.
    ``stream_interval`` (embedded backend) asks for an event every that many tokens instead of every token; the
    first and the last are always sent at once.
    """

    prompt_ids: list[int]
    prompt_text: str
    params: SamplingParams
    incremental: bool = True
    stream_interval: int = 1


@dataclass
class GenerationEvent:
    """A piece of output: new text (whole characters), the new token ids, the running count of generated tokens,
    and ``finish_reason`` (``"stop"`` at EOT, ``"length"`` at the token limit) on the last event."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    completion_tokens: int = 0
    finish_reason: str | None = None

    def then(self, later: GenerationEvent) -> GenerationEvent:
        """This event followed by ``later``, as one (a stream may coalesce events a slow reader has not taken yet)."""
        return GenerationEvent(
            self.text + later.text, self.token_ids + later.token_ids, later.completion_tokens, later.finish_reason
        )


class Backend(ABC):
    """A text generator behind the server.

    Attributes:
        name: ``transformers``, ``tgi`` or ``openai``.
        tokenizer: the served checkpoint's tokenizer (prompts are rendered and counted locally for every backend).
        config: the checkpoint's ``PretrainedConfig`` (model type, context length).
        unsupported_params: request parameters this backend cannot honour (the server answers 400 for them).
        response_formats: the ``response_format`` types it honours (advertised in ``GET /v1/models``).
    """

    name: str = "base"
    unsupported_params: frozenset[str] = frozenset()
    response_formats: tuple[str, ...] = ("text",)

    def __init__(self, tokenizer: Any, config: Any) -> None:
        self.tokenizer = tokenizer
        self.config = config

    async def start(self) -> None:
        """Called once when the server starts."""
        return None

    async def close(self) -> None:
        """Called once when the server stops."""
        return None

    def prepare(self, params: SamplingParams) -> None:
        """Check ``params`` before the response starts (e.g. compile a JSON schema); raise a 4xx ServingError."""
        if params.json_schema is not None and "json_schema" not in self.response_formats:
            raise ServingError(
                f"response_format is not supported by the {self.name} backend.",
                param="response_format",
                code="unsupported_parameter",
            )

    @abstractmethod
    def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        """Yield the completion of ``request`` piece by piece; closing the iterator cancels the generation."""

    def stats(self) -> dict[str, Any]:
        """Counters for ``/metrics`` and the tests (``running`` / ``waiting`` sequences where the backend knows)."""
        return {}
