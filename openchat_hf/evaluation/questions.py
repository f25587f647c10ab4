"""Question sets (Vicuna-bench, MT-bench) and their GPT-4 reference answers, shipped with the package."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from openchat_hf.evaluation.errors import EvaluationError
from openchat_hf.resources import MT_BENCH_DIR, VICUNA_BENCH_DIR

BENCH_DIRS = {"vicuna": VICUNA_BENCH_DIR, "mt_bench": MT_BENCH_DIR}

# Categories whose pairwise / single-answer judging uses the coding or the math instructions.
CODING_CATEGORIES = frozenset({"coding"})
MATH_CATEGORIES = frozenset({"math", "reasoning"})
# MT-bench categories graded against a reference answer (as in FastChat's llm_judge).
REFERENCE_CATEGORIES = frozenset({"math", "reasoning", "coding"})


@dataclass
class Question:
    """One benchmark question: one turn (Vicuna-bench) or two (MT-bench)."""

    question_id: int | str
    category: str
    turns: list[str]
    reference: list[str] | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        """Which judge instructions apply: ``general``, ``coding`` or ``math``."""
        if self.category in CODING_CATEGORIES:
            return "coding"
        if self.category in MATH_CATEGORIES:
            return "math"
        return "general"


def read_jsonl(path: str | Path) -> list[dict]:
    """All rows of a JSON Lines file; a clear error for a missing file or a broken line."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"{path} does not exist (expected a JSON Lines file)")
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                if not line.endswith("\n"):  # the last row of a killed run: ignore it, it is redone
                    continue
                raise EvaluationError(f"{path}:{lineno} is not valid JSON ({err}); fix or delete that line") from err
    return rows


def load_questions(bench: str = "vicuna", questions_path: str | Path | None = None) -> list[Question]:
    """The questions of ``bench`` (``vicuna`` or ``mt_bench``), with reference answers where shipped.

    ``questions_path`` reads a FastChat-format ``question.jsonl`` instead (``question_id``, ``category``, ``turns``);
    ``bench`` then only names the set.
    """
    if bench not in BENCH_DIRS and not questions_path:
        raise EvaluationError(f"unknown bench {bench!r}: choose one of {', '.join(BENCH_DIRS)}")
    path = Path(questions_path) if questions_path else BENCH_DIRS[bench] / "question.jsonl"
    references = {}
    ref_path = path.parent / "reference_answer_gpt-4.jsonl"
    if ref_path.is_file():
        for row in read_jsonl(ref_path):
            references[row["question_id"]] = row["choices"][0]["turns"]
    questions = []
    for row in read_jsonl(path):
        try:
            questions.append(
                Question(
                    question_id=row["question_id"],
                    category=row.get("category", "general"),
                    turns=list(row["turns"]),
                    reference=references.get(row["question_id"]),
                )
            )
        except (KeyError, TypeError) as err:
            raise EvaluationError(f"{path}: every row needs question_id and turns (bad row: {row!r:.200})") from err
    return questions


def select_questions(
    questions: list[Question], limit: int | None = None, question_ids: list | None = None
) -> list[Question]:
    """The first ``limit`` questions, or those whose id is in ``question_ids`` (ids compared as strings)."""
    if question_ids:
        wanted = {str(q) for q in question_ids}
        known = {str(q.question_id) for q in questions}
        missing = sorted(wanted - known)
        if missing:
            raise EvaluationError(f"unknown question ids: {', '.join(missing)}")
        questions = [q for q in questions if str(q.question_id) in wanted]
    if limit is not None:
        questions = questions[:limit]
    return questions
