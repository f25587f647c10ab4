"""Answer files: read the FastChat / shipped formats, append rows resumably."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from openchat_hf.evaluation.errors import EvaluationError
from openchat_hf.evaluation.questions import read_jsonl
from openchat_hf.resources import VICUNA_ANSWERS_DIR


@dataclass
class AnswerSet:
    """One model's answers: ``turns[str(question_id)]`` is the list of assistant turns."""

    model: str
    turns: dict[str, list[str]] = field(default_factory=dict)
    path: Path | None = None

    def first_turn(self, question_id) -> str | None:
        turns = self.turns.get(str(question_id))
        return turns[0] if turns else None


def slugify(name: str) -> str:
    """A file-name-safe form of a model name (``org/model:v1`` -> ``org_model_v1``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def resolve_answers_path(path_or_name: str | Path) -> Path:
    """A path, or the name of a shipped Vicuna-bench answer file (``gpt35`` -> ``answer_gpt35.jsonl``)."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    shipped = VICUNA_ANSWERS_DIR / f"answer_{path_or_name}.jsonl"
    if shipped.is_file():
        return shipped
    names = ", ".join(p.stem.removeprefix("answer_") for p in sorted(VICUNA_ANSWERS_DIR.glob("answer_*.jsonl")))
    raise EvaluationError(f"{path} is not a file nor a shipped answer set (shipped: {names})")


def answer_turns(row: dict) -> list[str]:
    """The assistant turns of one answer row, FastChat (``choices[0].turns``) or shipped (``text``) format."""
    if "choices" in row:
        return [str(t) for t in row["choices"][0]["turns"]]
    if "text" in row:
        return [str(row["text"])]
    if "output" in row:  # AlpacaEval format
        return [str(row["output"])]
    raise EvaluationError(f"answer row has neither choices, text nor output: {row!r:.200}")


def load_answers(path_or_name: str | Path, model: str | None = None) -> AnswerSet:
    """Read an answer file; the model name comes from ``model``, the rows' ``model_id``, or the file name."""
    path = resolve_answers_path(path_or_name)
    rows = read_jsonl(path)
    if not rows:
        raise EvaluationError(f"{path} holds no answers")
    name = model or rows[0].get("model_id") or rows[0].get("generator") or path.stem.removeprefix("answer_")
    answers = AnswerSet(model=str(name), path=path)
    for row in rows:
        if "question_id" not in row:
            raise EvaluationError(f"{path}: answer row without question_id: {row!r:.200}")
        answers.turns[str(row["question_id"])] = answer_turns(row)
    return answers


class JsonlAppender:
    """Append rows to a JSONL file, one flushed (and fsynced) line per row, so a killed run loses nothing finished."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def _repair_tail(self) -> None:
        """Drop a half-written last line left by a killed run."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            self.path.write_bytes(data[: data.rfind(b"\n") + 1])

    def write(self, row: dict) -> None:
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def failure_row(step: str, question_id, error: Exception | str, **extra) -> dict:
    """One line of a ``failures.jsonl``: an item that still failed after the retries (left for the next run)."""
    return {"step": step, "question_id": question_id, "error": str(error), **extra, "tstamp": time.time()}


def write_rows(path: str | Path, rows) -> Path:
    """Replace the JSONL file ``path`` with ``rows`` at once (written beside it, then renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def read_rows(path: str | Path) -> list[dict]:
    """Rows already in a (possibly missing or half-written) output file."""
    path = Path(path)
    return read_jsonl(path) if path.is_file() else []
