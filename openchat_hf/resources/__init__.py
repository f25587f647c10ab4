"""Data shipped with the package.

Vicuna-bench and MT-bench questions, GPT-4 reference answers and real model answers come from the FastChat project
(lm-sys/FastChat), Apache License 2.0: see ``LICENSE-FastChat-Apache-2.0.txt`` in this folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent
VICUNA_BENCH_DIR = RESOURCES_DIR / "vicuna_bench"
MT_BENCH_DIR = RESOURCES_DIR / "mt_bench"
VICUNA_ANSWERS_DIR = RESOURCES_DIR / "vicuna_answers"
SAMPLE_SHAREGPT_DIR = RESOURCES_DIR / "sample_sharegpt"


def read_jsonl(path: str | Path) -> list[dict]:
    """All rows of a JSON Lines file."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def iter_resource_texts() -> Iterator[str]:
    """Every question and answer text shipped with the package (tokenizer training, fixtures)."""
    for path in sorted(VICUNA_BENCH_DIR.glob("*.jsonl")) + sorted(MT_BENCH_DIR.glob("*.jsonl")):
        for row in read_jsonl(path):
            yield from (t for t in row.get("turns", []) if isinstance(t, str))
            for choice in row.get("choices", []):
                yield from (t for t in choice.get("turns", []) if isinstance(t, str))
    for path in sorted(VICUNA_ANSWERS_DIR.glob("*.jsonl")):
        for row in read_jsonl(path):
            yield row["text"]
