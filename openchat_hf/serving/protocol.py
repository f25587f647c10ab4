"""The OpenAI request schema we accept, the parameter table, and the response / chunk builders.

``PARAMETERS`` is the single list of honoured request parameters with their behaviour; ``docs/serving.md`` carries
the table :func:`parameter_table` renders from it (a test keeps the two equal). Everything else in OpenAI's schema
(``UNSUPPORTED_PARAMETERS``) and any unknown key is rejected with a 400 that names it.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from openchat_hf.serving.errors import ServingError

PARAMETERS: dict[str, str] = {
    "model": "Required. Must equal the served model name (`GET /v1/models`); otherwise 404 `model_not_found`.",
    "messages": "Required, non-empty. Roles `system` (first message only), `user`, `assistant`; content is a string "
    "or a list of `text` parts. Rendered with the model type's chat template; special-token strings in content "
    "are neutralised.",
    "prompt": "`/v1/completions` only. A string (tokenized without adding special tokens) or a list of token ids.",
    "temperature": "0 to 2, default 1. 0 means greedy decoding.",
    "top_p": "0 to 1, default 1. Nucleus sampling: the smallest set of tokens whose probability reaches `top_p`.",
    "max_tokens": "Maximum tokens to generate, >= 1. Default: the rest of the context. Prompt + `max_tokens` "
    "beyond the context is a 400 with the token counts.",
    "max_completion_tokens": "Same as `max_tokens` (newer OpenAI name); `max_tokens` wins if both are given.",
    "n": "1 to 16, default 1. Number of choices; with `seed`, choice i uses seed + i.",
    "stop": "A string or up to 4 strings. Generation stops before the first one; it is not returned. Generation "
    "always stops at the end-of-turn token.",
    "stream": "Default false. Server-sent events in OpenAI's `chat.completion.chunk` format, ending with "
    "`data: [DONE]`; each chunk holds whole characters only.",
    "stream_options": '`{"include_usage": true}` adds a final chunk with `usage` to a stream.',
    "seed": "Integer (64-bit). The same seed (and request) gives the same output on the embedded backend.",
    "presence_penalty": "-2 to 2, default 0. Subtracted from the logits of tokens already generated.",
    "frequency_penalty": "-2 to 2, default 0. Subtracted once per earlier occurrence of a token.",
    "user": "Accepted and ignored (never logged).",
}

UNSUPPORTED_PARAMETERS = (
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "response_format",
    "service_tier",
    "store",
    "metadata",
    "modalities",
    "audio",
    "prediction",
    "reasoning_effort",
    "web_search_options",
    "best_of",
    "echo",
    "suffix",
)

_STRICT = ConfigDict(strict=True, extra="forbid")


class TextPart(BaseModel):
    model_config = _STRICT
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = _STRICT
    role: Literal["system", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = _STRICT
    include_usage: bool = False


class _Sampling(BaseModel):
    model_config = _STRICT
    model: str
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    n: Annotated[int, Field(ge=1, le=16)] | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    seed: Annotated[int, Field(ge=-(2**63), lt=2**64)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    user: str | None = None

    def stop_list(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


class ChatCompletionRequest(_Sampling):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]


class CompletionRequest(_Sampling):
    prompt: Annotated[str, Field(min_length=1)] | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


_FIELD_NAMES = {
    name
    for cls in (ChatCompletionRequest, CompletionRequest, ChatMessage, TextPart, StreamOptions)
    for name in cls.model_fields
}


def parse_request(data: Any, model: type[_Sampling], *, unsupported: frozenset[str] = frozenset()) -> Any:
    """Validate a decoded JSON body; raise a 400 :class:`ServingError` naming the offending parameter."""
    if not isinstance(data, dict):
        raise ServingError("The request body must be a JSON object.", code="invalid_body")
    fields = set(model.model_fields)
    for key in list(data):
        value = data[key]
        if key in UNSUPPORTED_PARAMETERS or (key in fields and key in unsupported):
            if value is None or (key in unsupported and value == 0 and not isinstance(value, bool)):
                del data[key]
                continue
            raise ServingError(
                f"Parameter '{key}' is not supported by this server; remove it from the request.",
                param=key,
                code="unsupported_parameter",
            )
        if key not in fields:
            raise ServingError(
                f"Unknown parameter '{key}'. Supported: {', '.join(sorted(fields))}.",
                param=key,
                code="unknown_parameter",
            )
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        param = ".".join(str(p) for p in first["loc"] if isinstance(p, int) or p in _FIELD_NAMES) or None
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        elif first["type"] == "literal_error" and first["loc"][-1] == "role":
            message = "unknown role; expected 'system', 'user' or 'assistant'"
        raise ServingError(f"Invalid parameter '{param}': {message}.", param=param, code="invalid_value") from None


def parameter_table() -> str:
    """The Markdown table of :data:`PARAMETERS` (what docs/serving.md shows)."""
    rows = ["| Parameter | Behaviour |", "| --- | --- |"]
    rows += [f"| `{name}` | {text} |" for name, text in PARAMETERS.items()]
    rows.append(
        "| anything else | 400 `unsupported_parameter` (OpenAI parameters such as "
        + ", ".join(f"`{p}`" for p in UNSUPPORTED_PARAMETERS[:6])
        + ") or 400 `unknown_parameter`; `null` values are ignored. |"
    )
    return "\n".join(rows)


# ------------------------------------------------------------------------------------------------- responses
def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


if __name__ == "__main__":  # print the table for docs/serving.md
    print(parameter_table())
