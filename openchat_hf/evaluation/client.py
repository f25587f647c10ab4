"""OpenAI-compatible endpoints: one ``AsyncOpenAI`` client per endpoint, errors mapped to ``EndpointError``.

Retries with exponential backoff (429, 408, 409, 5xx, timeouts, dropped connections; ``Retry-After`` honoured) are
the ``openai`` SDK's own (``max_retries``). A 200 whose body is not a usable completion (not JSON, no ``choices``, no
message) is retried here, ``malformed_retries`` times with backoff. What still fails surfaces as ``EndpointError``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field

from openchat_hf.evaluation.errors import EvaluationError

logger = logging.getLogger(__name__)


class EndpointError(EvaluationError):
    """A request that failed after all retries (``retryable``: worth re-running later, e.g. an outage)."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


@dataclass
class EndpointConfig:
    """Where to send chat requests. The key is read from the environment variable ``api_key_env``."""

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0
    max_retries: int = 6
    malformed_retries: int = 3  # new requests after a 200 with an unusable body (bad JSON, empty choices)
    retry_delay: float = 0.5  # first backoff of those retries, doubling
    extra_headers: dict[str, str] = field(default_factory=dict)

    def api_key(self) -> str:
        key = os.environ.get(self.api_key_env)
        if key:
            return key
        if "api.openai.com" in self.base_url:
            raise EvaluationError(f"set the API key in ${self.api_key_env} (or name another variable --api-key-env)")
        return "EMPTY"  # local servers (ours, vLLM, TGI) usually need no key


def make_client(config: EndpointConfig):
    """An ``openai.AsyncOpenAI`` client for ``config``."""
    from openai import AsyncOpenAI

    for name in ("httpx", "httpx2", "httpcore", "httpcore2"):  # an INFO line per request breaks the progress bars
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)
    return AsyncOpenAI(
        base_url=config.base_url,
        api_key=config.api_key(),
        timeout=config.timeout,
        max_retries=config.max_retries,
        default_headers=config.extra_headers or None,
    )


def _completion_text(response) -> tuple[str, dict]:
    """(text, usage) of a parsed completion; ``ValueError`` naming what is missing when the body is unusable."""
    if isinstance(response, str):  # the SDK returns the raw text of a 200 that is not JSON
        raise ValueError(f"the 200 response is not JSON: {response[:80]!r}")
    choices = getattr(response, "choices", None)
    if not choices:
        raise ValueError("the response has no choices")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None) if message is not None else None
    if message is None or (content is not None and not isinstance(content, str)):
        raise ValueError("the response's first choice has no message")
    usage = response.usage.model_dump() if getattr(response, "usage", None) else {}
    return content or "", usage


async def chat(
    client, model: str, messages: list[dict], *, malformed_retries: int = 3, retry_delay: float = 0.5, **params
) -> tuple[str, dict]:
    """One chat completion -> (text, usage dict). Raises ``EndpointError`` once the retries are spent.

    HTTP errors are retried by the SDK; a 200 with a malformed body (invalid JSON, empty ``choices``, no message) is
    retried here ``malformed_retries`` times, then raised as a retryable ``EndpointError`` (the item is left for a
    re-run, never scored).
    """
    import openai

    problem = ""
    for attempt in range(malformed_retries + 1):
        if attempt:
            await asyncio.sleep(min(retry_delay * 2 ** (attempt - 1), 8.0))
        try:
            response = await client.chat.completions.create(model=model, messages=messages, **params)
        except openai.APIStatusError as err:
            retryable = err.status_code in (408, 409, 429) or err.status_code >= 500
            raise EndpointError(f"{model}: HTTP {err.status_code}: {err.message}", retryable=retryable) from err
        except openai.APIConnectionError as err:  # includes APITimeoutError
            raise EndpointError(f"{model}: {type(err).__name__}: {err}", retryable=True) from err
        except (ValueError, TypeError, AttributeError, openai.APIResponseValidationError) as err:  # bad JSON body
            problem = f"the 200 response body is not a valid completion ({type(err).__name__}: {str(err)[:120]})"
        else:
            try:
                return _completion_text(response)
            except ValueError as err:
                problem = str(err)
        logger.debug("%s: malformed response (attempt %d): %s", model, attempt + 1, problem)
    raise EndpointError(f"{model}: {problem} after {malformed_retries + 1} attempts", retryable=True)
