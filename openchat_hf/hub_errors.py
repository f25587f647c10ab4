"""What a ``huggingface_hub`` call raises when the Hub cannot be reached or refuses a request (one list for all)."""

from __future__ import annotations

import importlib


def hub_errors() -> tuple[type[BaseException], ...]:
    """The exception types of a failed Hub call: HTTP errors, and connection errors of its HTTP client.

    huggingface_hub 1.x+ talks HTTP through ``httpx2`` (earlier versions through ``httpx``); their connection errors
    (Hub unreachable, DNS, timeouts) are not ``OSError``\\ s.
    """
    from huggingface_hub.errors import HfHubHTTPError

    errors: tuple[type[BaseException], ...] = (HfHubHTTPError, OSError)
    for name in ("httpx2", "httpx"):
        try:
            errors += (importlib.import_module(name).HTTPError,)
        except (ImportError, AttributeError):
            pass
    return errors


def first_line(err: BaseException) -> str:
    """The error's message, first line only (Hub errors carry multi-line server bodies)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
