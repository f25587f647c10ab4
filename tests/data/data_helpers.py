"""Builders of ShareGPT-shaped inputs for the data tests."""

from __future__ import annotations

import json
from pathlib import Path

from openchat_hf.data.sample import markdown_to_chatgpt_html, page_html

GPT4 = "Model: GPT-4"


def conversation(n: int, model: str = GPT4, *, answer: str | None = None) -> dict:
    """A valid two-turn ShareGPT conversation, distinct for each ``n``."""
    answer = answer or f"Answer number {n}: use `sorted(items)` to sort.\n\n```python\nprint({n})\n```"
    return {
        "items": [
            {"from": "human", "value": f"Question {n}: how do I sort a list?"},
            {"from": "gpt", "value": markdown_to_chatgpt_html(answer)},
        ],
        "model": model,
    }


def write_page(folder: Path, name: str, content: dict | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.html"
    path.write_text(page_html(name, content), encoding="utf-8")
    return path


def write_dump(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path
