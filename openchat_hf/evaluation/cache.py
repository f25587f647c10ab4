"""A request-hash cache of judge calls (JSONL, append-only), so re-running a judge step costs nothing."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from openchat_hf.evaluation.questions import read_jsonl
from openchat_hf.evaluation.records import JsonlAppender


def request_key(request: dict) -> str:
    """SHA-256 of the request's canonical JSON (sorted keys): same request, same key, on any machine."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


class JudgeCache:
    """``key -> {"text", "usage"}``, loaded from and appended to one JSONL file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._rows: dict[str, dict] = {}
        if self.path.is_file():
            for row in read_jsonl(self.path):
                self._rows[row["key"]] = row
        self._out: JsonlAppender | None = None

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: str) -> dict | None:
        return self._rows.get(key)

    def put(self, key: str, request: dict, text: str, usage: dict) -> None:
        row = {"key": key, "request": request, "text": text, "usage": usage, "tstamp": time.time()}
        if self._out is None:
            self._out = JsonlAppender(self.path)
        self._out.write(row)
        self._rows[key] = row

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
