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
from openchat_hf.serving.text import MAX_STOP_CHARS

PARAMETERS: dict[str, str] = {
    "model": "Required. Must equal the served model name (`GET /v1/models`); otherwise 404 `model_not_found`.",
    "messages": "Required, non-empty. Roles `system` (first message only), `user`, `assistant`; content is a string "
    "or a list of `text` parts. Rendered with the model type's chat template; special-token strings in content "
    "are neutralised. A message `name` is a 400 (the template has no speaker names).",
    "prompt": "`/v1/completions` only. A string (tokenized without adding special tokens) or a list of token ids.",
    "temperature": "0 to 2, default 1. 0 means greedy decoding; values in (0, 0.01) are raised to 0.01 (as vLLM "
    "does: smaller ones overflow the logits).",
    "top_p": "0 to 1, default 1. Nucleus sampling: the smallest set of tokens whose probability reaches `top_p`.",
    "max_tokens": "Maximum tokens to generate, >= 1. Default: the rest of the context. Prompt + `max_tokens` "
    "beyond the context is a 400 with the token counts.",
    "max_completion_tokens": "Same as `max_tokens` (newer OpenAI name); `max_tokens` wins if both are given.",
    "n": "1 to 16, default 1. Number of choices; with `seed`, choice i uses seed + i.",
    "stop": f"A string or up to 4 strings of at most {MAX_STOP_CHARS} characters. Generation stops before the "
    "first one; it is not returned. Generation always stops at the end-of-turn token.",
    "stream": "Default false. Server-sent events in OpenAI's `chat.completion.chunk` format, ending with "
    "`data: [DONE]`; each chunk holds whole characters only.",
    "stream_options": '`{"include_usage": true}` adds a final chunk with `usage` to a stream; with `stream` not '
    "true it is a 400.",
    "seed": "Integer (64-bit). The same seed (and request) gives the same output on the embedded backend.",
    "presence_penalty": "-2 to 2, default 0. Subtracted from the logits of tokens already generated.",
    "frequency_penalty": "-2 to 2, default 0. Subtracted once per earlier occurrence of a token.",
    "response_format": '`{"type": "text"}` (default), `{"type": "json_object"}` or `{"type": "json_schema", '
    '"json_schema": {"name": ..., "schema": {...}}}`. The embedded backend constrains decoding (llguidance) so the '
    'answer is JSON (valid for the schema) unless `max_tokens` cuts it (`finish_reason: "length"`); the `openai` '
    "proxy passes it upstream, the `tgi` proxy sends it as TGI's `grammar`. An invalid schema is a 400. "
    "`GET /v1/models` lists the supported types in `response_formats`.",
    "user": "Accepted and not used; logged (with the whole request) only under `--log-conversations`.",
}

HARMLESS_VALUES: dict[str, tuple] = {
    "logprobs": (False,),
    "tools": ([],),
    "tool_choice": ("none",),
    "echo": (False,),
    "best_of": (1,),
}
"""Unsupported parameters accepted with these values (clients send them by default; vLLM accepts them too)."""

UNSUPPORTED_PARAMETERS = (
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
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


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)
    name: Annotated[str, Field(max_length=256)] = "response"
    description: str | None = None
    json_schema: dict[str, Any] | bool = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = _STRICT
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    def schema_or_none(self) -> dict | bool | None:
        """The JSON schema to enforce (``{"type": "object"}`` for ``json_object``); ``None`` for plain text."""
        if self.type == "text":
            return None
        if self.type == "json_object":
            return {"type": "object"}
        if self.json_schema is None:
            raise ServingError(
                "response_format of type 'json_schema' needs a 'json_schema' object with a 'schema'.",
                param="response_format",
                code="invalid_value",
            )
        return self.json_schema.json_schema


StopString = Annotated[str, Field(max_length=MAX_STOP_CHARS)]


class _Sampling(BaseModel):
    model_config = _STRICT
    model: str
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    n: Annotated[int, Field(ge=1, le=16)] | None = None
    stop: StopString | Annotated[list[StopString], Field(max_length=4)] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    seed: Annotated[int, Field(ge=-(2**63), lt=2**64)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None

    def stop_list(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


class ChatCompletionRequest(_Sampling):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]


class CompletionRequest(_Sampling):
    prompt: Annotated[str, Field(min_length=1)] | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


_FIELD_NAMES = {
    name
    for cls in (
        ChatCompletionRequest,
        CompletionRequest,
        ChatMessage,
        TextPart,
        StreamOptions,
        ResponseFormat,
        JsonSchemaFormat,
    )
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
            if value is None or _harmless(key, value, key in unsupported):
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
        request = model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        param = ".".join(str(p) for p in first["loc"] if isinstance(p, int) or p in _FIELD_NAMES) or None
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        elif first["type"] == "literal_error" and first["loc"][-1] == "role":
            message = "unknown role; expected 'system', 'user' or 'assistant'"
        raise ServingError(f"Invalid parameter '{param}': {message}.", param=param, code="invalid_value") from None
    _check_consistency(request)
    return request


def _harmless(key: str, value: Any, backend_unsupported: bool) -> bool:
    """A value of an unsupported parameter that asks for nothing (``logprobs: false``, ``tools: []``, ...)."""
    same = any(type(value) is type(v) and value == v for v in HARMLESS_VALUES.get(key, ()))
    if backend_unsupported:  # a backend without a feature still accepts its neutral value
        same = same or (type(value) in (int, float) and value == 0) or value == {"type": "text"}
    return same


def _check_consistency(request: Any) -> None:
    """Rules across fields that the schema alone cannot express."""
    if request.stream_options is not None and not request.stream:
        raise ServingError(
            "stream_options is only allowed with stream: true.", param="stream_options", code="invalid_value"
        )
    for i, message in enumerate(getattr(request, "messages", None) or ()):
        if message.name is not None:
            raise ServingError(
                f"messages[{i}].name is not supported: the chat template has no speaker names; remove it.",
                param=f"messages.{i}.name",
                code="unsupported_parameter",
            )
    if request.response_format is not None:
        request.response_format.schema_or_none()  # a json_schema without its schema is a 400 here


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
