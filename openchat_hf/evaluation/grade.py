"""Step 3: MT-bench single-answer grading: a ``[[rating]]`` from 1 to 10 per turn, with the shipped GPT-4 reference
answers for math, reasoning and coding questions.

Output folder: ``meta.json`` and ``grades.jsonl`` (one row per model and question, both turns rated or failed) plus
``cache.jsonl``. Resumable and cached like the pairwise judge.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from openchat_hf.evaluation.cache import JudgeCache
from openchat_hf.evaluation.client import EndpointConfig, EndpointError, make_client
from openchat_hf.evaluation.errors import EvaluationError
from openchat_hf.evaluation.parsing import parse_rating
from openchat_hf.evaluation.prompts import PROMPTS_VERSION, grade_messages
from openchat_hf.evaluation.questions import REFERENCE_CATEGORIES, load_questions, select_questions
from openchat_hf.evaluation.records import JsonlAppender, load_answers, read_rows
from openchat_hf.evaluation.reviewer import Reviewer, ReviewStats

logger = logging.getLogger(__name__)


@dataclass
class GradeConfig:
    """Settings of ``eval grade``."""

    answers: list[str | Path]
    endpoint: EndpointConfig
    out_dir: str | Path
    bench: str = "mt_bench"
    questions_path: str | Path | None = None
    temperature: float = 0.0
    max_tokens: int = 1024
    parse_retries: int = 2
    concurrency: int = 8
    limit: int | None = None
    question_ids: list | None = None
    cache_path: str | Path | None = None


@dataclass
class GradeResult:
    out_dir: Path
    graded: int = 0
    skipped: int = 0
    failed_ratings: int = 0
    calls_estimate: int = 0
    endpoint_failures: list = field(default_factory=list)
    stats: ReviewStats = field(default_factory=ReviewStats)


async def agrade(config: GradeConfig) -> GradeResult:
    """Async core of :func:`run_grade`."""
    if not config.answers:
        raise EvaluationError("give at least one --answers file")
    questions = select_questions(
        load_questions(config.bench, config.questions_path), config.limit, config.question_ids
    )
    missing_refs = [q.question_id for q in questions if q.category in REFERENCE_CATEGORIES and not q.reference]
    if missing_refs:
        logger.warning("no reference answer for questions %s: graded without one", missing_refs)
    answer_sets = [load_answers(path) for path in config.answers]
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "kind": "single",
        "bench": config.bench,
        "judge": {
            "model": config.endpoint.model,
            "base_url": config.endpoint.base_url,
            "prompts_version": PROMPTS_VERSION,
            "samples": 1,
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
        },
    }
    meta_path = out_dir / "meta.json"
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if (
            old.get("judge", {}).get("model") != config.endpoint.model
            or old.get("judge", {}).get("prompts_version") != PROMPTS_VERSION
        ):
            raise EvaluationError(f"{out_dir} holds grades from another judge or prompts version; use another --out")
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    done = {(row["model"], str(row["question_id"])) for row in read_rows(out_dir / "grades.jsonl")}
    jobs = []
    for answers in answer_sets:
        for question in questions:
            turns = answers.turns.get(str(question.question_id))
            if turns is None:
                continue
            if len(turns) < len(question.turns):
                raise EvaluationError(
                    f"{answers.path}: question {question.question_id} has {len(turns)} answer turns, "
                    f"{len(question.turns)} expected (answer it with `eval answers --bench {config.bench}`)"
                )
            if (answers.model, str(question.question_id)) not in done:
                jobs.append((answers, question))
    result = GradeResult(out_dir=out_dir, skipped=len(done))
    result.calls_estimate = sum(len(q.turns) for _, q in jobs)
    logger.info("grade with %s: %d answers, about %d calls", config.endpoint.model, len(jobs), result.calls_estimate)
    if not jobs:
        return result
    cache = JudgeCache(config.cache_path or out_dir / "cache.jsonl")
    client = make_client(config.endpoint)
    reviewer = Reviewer(
        client, config.endpoint, cache, config.temperature, config.max_tokens, config.parse_retries, config.concurrency
    )
    result.stats = reviewer.stats

    async def one(answers, question):
        turns = answers.turns[str(question.question_id)]
        reviews = await asyncio.gather(
            *(
                reviewer.review(grade_messages(question, turns, t), parse_rating)
                for t in range(1, len(question.turns) + 1)
            )
        )
        return answers, question, reviews

    tasks = [asyncio.ensure_future(one(a, q)) for a, q in jobs]
    try:
        with JsonlAppender(out_dir / "grades.jsonl") as out, tqdm(total=len(jobs), desc="grade") as bar:
            for next_done in asyncio.as_completed(tasks):
                try:
                    answers, question, reviews = await next_done
                except EndpointError as err:
                    if not err.retryable:
                        raise
                    logger.warning("grading failed after retries (re-run to resume): %s", err)
                    result.endpoint_failures.append(str(err))
                else:
                    out.write(
                        {
                            "question_id": question.question_id,
                            "category": question.category,
                            "model": answers.model,
                            "turns": [
                                {
                                    "turn": i,
                                    "rating": r.value,
                                    "text": r.text,
                                    "error": r.error,
                                    "attempts": r.attempts,
                                }
                                for i, r in enumerate(reviews, 1)
                            ],
                        }
                    )
                    result.graded += 1
                    result.failed_ratings += sum(r.error is not None for r in reviews)
                bar.update(1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        cache.close()
        await client.close()
    return result


def run_grade(config: GradeConfig) -> GradeResult:
    """Grade every answer file of ``config.answers`` on MT-bench (or another multi-turn question set)."""
    return asyncio.run(agrade(config))


if __name__ == "__main__":
    from openchat_hf.evaluation.cli import run_step

    run_step("grade")
