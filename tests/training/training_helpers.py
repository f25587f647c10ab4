"""Helpers shared by the training tests (imported as a plain module: tests/ is not a package)."""

from __future__ import annotations

import itertools
from pathlib import Path

from openchat_hf.resources import VICUNA_ANSWERS_DIR, VICUNA_BENCH_DIR, read_jsonl
from openchat_hf.templates import ChatTemplate

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_RECIPE = REPO_ROOT / "recipes" / "tiny" / "sft" / "config_cpu.yaml"
SFT_SCRIPT = REPO_ROOT / "recipes" / "sft.py"


def bundled_conversations() -> list[list[dict[str, str]]]:
    """Vicuna-bench questions with real answers (several models), some joined into two-turn chats."""
    questions = {row["question_id"]: row["turns"][0] for row in read_jsonl(VICUNA_BENCH_DIR / "question.jsonl")}
    chats = []
    for path in sorted(VICUNA_ANSWERS_DIR.glob("*.jsonl")):
        for row in read_jsonl(path):
            chats.append(
                [
                    {"role": "user", "content": questions[row["question_id"]]},
                    {"role": "assistant", "content": row["text"]},
                ]
            )
    two_turn = [a + b for a, b in itertools.pairwise(chats[::7])]
    return chats + two_turn


def tokenized_rows(tokenizer, n: int, max_length: int = 192, seed: int = 0, weights: bool = False) -> list[dict]:
    """``n`` conversations tokenized with the openchat template, each cut to a random length <= ``max_length``."""
    import random

    rng = random.Random(seed)
    chats = bundled_conversations()
    rng.shuffle(chats)
    out = []
    for chat in ChatTemplate("openchat", tokenizer).tokenize_batch(chats):
        keep = rng.randint(max_length // 3, max_length)
        ids, mask = chat.input_ids[:keep], chat.supervise_mask[:keep]
        if sum(mask[1:]) == 0:
            continue
        row = {"input_ids": ids, "supervise_mask": mask, "length": len(ids)}
        if weights:
            row["weight"] = 0.5 + (len(out) % 3) * 0.75
        out.append(row)
        if len(out) == n:
            break
    return out
