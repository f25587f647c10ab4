"""Who may call the server: bearer keys (constant-time), the ``Host`` header allow-list, the body's media type."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from openchat_hf.serving.errors import ServingError


class ApiKeys:
    """Accepted bearer tokens; none means no authentication."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = [k.encode() for k in keys if k]

    def __bool__(self) -> bool:
        return bool(self.keys)

    def authorize(self, header: str | None) -> None:
        if not self.keys:
            return
        token = header[7:].strip() if header and header[:7].lower() == "bearer " else ""
        ok = False
        for key in self.keys:  # compare against every key: no early exit, constant time per key
            ok |= hmac.compare_digest(token.encode("utf-8", "surrogateescape"), key)
        if not ok:
            raise ServingError(
                "Missing or invalid API key: send 'Authorization: Bearer <key>'.", status=401, code="invalid_api_key"
            )


def read_key_file(path: str | Path) -> list[str]:
    """Keys from a file, one per line (blank lines and ``#`` comments ignored)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise ServingError(f"Cannot read the API key file {path}: {err.strerror or err}.") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(header: str | None, allowed: Sequence[str]) -> None:
    """Refuse a ``Host`` header that is not one of ``allowed`` (``*.example.com`` matches sub-domains)."""
    if not allowed:
        return
    host = (header or "").rsplit(":", 1)[0] if not (header or "").endswith("]") else (header or "")
    host = host.lower()
    for pattern in allowed:
        pattern = pattern.lower()
        if pattern == "*" or host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return
    raise ServingError("Invalid Host header.", code="invalid_host")


def check_json_media_type(header: str | None) -> None:
    """415 unless the body is declared ``application/json`` (a cross-origin ``text/plain`` POST must not run)."""
    media = (header or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise ServingError(
            f"Content-Type must be application/json, got {media or 'none'!r}.",
            status=415,
            code="unsupported_media_type",
        )
