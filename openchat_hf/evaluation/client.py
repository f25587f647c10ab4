"""OpenAI-compatible endpoints: one ``AsyncOpenAI`` client per endpoint, errors mapped to ``EndpointError``.

Retries with exponential backoff (429, 408, 409, 5xx, timeouts, dropped connections; ``Retry-After`` honoured) are
the ``openai`` SDK's own (``max_retries``); what is still failing after them surfaces as ``EndpointError``.
"""

from __future__ import annotations

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

    return AsyncOpenAI(
        base_url=config.base_url,
        api_key=config.api_key(),
        timeout=config.timeout,
        max_retries=config.max_retries,
        default_headers=config.extra_headers or None,
    )


async def chat(client, model: str, messages: list[dict], **params) -> tuple[str, dict]:
    """One chat completion -> (text, usage dict). Raises ``EndpointError`` once the SDK's retries are spent."""
    import openai

    try:
        response = await client.chat.completions.create(model=model, messages=messages, **params)
    except openai.APIStatusError as err:
        retryable = err.status_code in (408, 409, 429) or err.status_code >= 500
        raise EndpointError(f"{model}: HTTP {err.status_code}: {err.message}", retryable=retryable) from err
    except openai.APIConnectionError as err:  # includes APITimeoutError
        raise EndpointError(f"{model}: {type(err).__name__}: {err}", retryable=True) from err
    if not response.choices:
        raise EndpointError(f"{model}: the response has no choices", retryable=True)
    text = response.choices[0].message.content or ""
    usage = response.usage.model_dump() if response.usage else {}
    return text, usage
