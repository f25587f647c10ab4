"""The per-record drop log, ``OUTPUT/dropped.jsonl``: one JSON object per dropped record.

Each line is ``{"source": file, "index": int, "id": str | null, "step": str, "reason": str, "excerpt": str, ...}``:
the input file (relative to INPUT), the record's position in it, its own id (``null`` when the input gave none), the
pipeline step and reason that dropped it, a short excerpt showing why, and step-specific keys (``kept_id`` of an
exact duplicate, ``model_type`` of a convert drop, ``matched_id`` / ``cluster`` / ``rule`` of later steps). The
report's drop counts are the counts of this log by ``(step, reason)`` (convert drops: by model type too), so every
number in the report can be traced to its input records::

    with DropLog(output_dir) as log:
        log.add("clean", "blocked_words", source="dump.json", index=3, id="abc", excerpt="...made by OpenAI...")
    log.counts()  # {"clean": {"blocked_words": 1}}
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DROP_LOG = "dropped.jsonl"
EXCERPT_CHARS = 160
EXAMPLES_PER_REASON = 3


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line (whitespace collapsed), cut to about ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def excerpt_around(text: str, start: int, end: int, limit: int = EXCERPT_CHARS) -> str:
    """An excerpt of ``text`` centred on ``text[start:end]`` (e.g. a blocked word)."""
    before = max(0, start - (limit - (end - start)) // 2)
    head = "…" if before else ""
    return head + excerpt(text[before:], limit - len(head))


class DropLog:
    """Writes ``dropped.jsonl`` in ``output_dir`` and counts its lines by step, reason (and model type)."""

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / DROP_LOG
        self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._counts: Counter[tuple[str, str, str | None]] = Counter()
        self._examples: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def add(
        self,
        step: str,
        reason: str,
        *,
        source: str,
        index: int,
        id: str | None = None,  # noqa: A002 - the log's key
        excerpt: str = "",
        **extra: Any,
    ) -> None:
        """Log one dropped record (``extra``: step-specific keys, e.g. ``kept_id``, ``model_type``)."""
        line = {"source": source, "index": int(index), "id": id or None, "step": step, "reason": reason}
        line["excerpt"] = excerpt
        line.update(extra)
        self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._counts[(step, reason, extra.get("model_type"))] += 1
        examples = self._examples.setdefault((step, reason), [])
        if len(examples) < EXAMPLES_PER_REASON:
            examples.append(line)

    def counts(self, model_type: str | None = None) -> dict[str, dict[str, int]]:
        """``{step: {reason: n}}`` of the lines logged (for ``model_type``, or those without one)."""
        out: dict[str, dict[str, int]] = {}
        for (step, reason, mt), n in sorted(self._counts.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            if mt == model_type:
                out.setdefault(step, {})[reason] = n
        return out

    def totals(self) -> Counter[tuple[str, str]]:
        """Lines logged by ``(step, reason)``, over every model type."""
        out: Counter[tuple[str, str]] = Counter()
        for (step, reason, _), n in self._counts.items():
            out[(step, reason)] += n
        return out

    def examples(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """The first few lines logged per ``(step, reason)``."""
        return self._examples

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> DropLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_drop_log(output_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The lines of ``output_dir/dropped.jsonl``."""
    with open(Path(output_dir) / DROP_LOG, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def count_drop_log(output_dir: str | Path) -> Counter[tuple[str, str]]:
    """Lines of ``dropped.jsonl`` counted by ``(step, reason)``."""
    return Counter((line["step"], line["reason"]) for line in read_drop_log(output_dir))
