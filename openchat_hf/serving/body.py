"""Reading a request body: media type (415), size (413), JSON (400), and text every tokenizer can take (400)."""

from __future__ import annotations

import json
from typing import Any

from openchat_hf.serving.errors import ServingError
from openchat_hf.serving.security import check_json_media_type


def _too_large(limit: int) -> ServingError:
    return ServingError(f"The request body is larger than {limit} bytes.", status=413, code="too_large")


async def read_json(request: Any, limit: int) -> Any:
    """The decoded JSON body of a Starlette ``request``, or a 4xx :class:`ServingError`."""
    check_json_media_type(request.headers.get("content-type"))
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ServingError("The request body is not valid JSON.", code="invalid_json") from None
    check_text(data)
    return data


def check_text(data: Any) -> None:
    """Refuse strings that are not Unicode text (lone surrogates such as ``"\\ud800"``), in keys and values.

    JSON allows such escapes, but no tokenizer or UTF-8 encoder can take them; iterative, so depth is no risk.
    """
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            strings = (value,)
        elif isinstance(value, dict):
            strings = tuple(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
            continue
        else:
            continue
        for text in strings:
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise ServingError(
                        "The request contains a lone UTF-16 surrogate (such as \\ud800), which is not text.",
                        code="invalid_text",
                    ) from None
