"""Step 2: pairwise judging of a model's answers against a baseline's (evidence first, both orders, k samples).

Output folder: ``meta.json`` (model, baseline, judge, prompts version, samples) and ``judgments.jsonl`` (one row per
question whose reviews are all done; parse failures are recorded in the row, never scored) plus ``cache.jsonl``.
Running the same command again judges only what is missing, and every call already made comes from the cache.
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
from openchat_hf.evaluation.parsing import parse_pair_scores
from openchat_hf.evaluation.prompts import PROMPTS_VERSION, pairwise_messages
from openchat_hf.evaluation.questions import Question, load_questions, select_questions
from openchat_hf.evaluation.records import AnswerSet, JsonlAppender, load_answers, read_rows
from openchat_hf.evaluation.reviewer import Reviewer, ReviewStats

logger = logging.getLogger(__name__)

ORDERS = ("model_first", "baseline_first")
CHARS_PER_TOKEN = 4  # rough, for the estimate printed before a run


@dataclass
class JudgeConfig:
    """Settings of ``eval judge``."""

    answers: str | Path
    baseline: str | Path
    endpoint: EndpointConfig
    out_dir: str | Path
    bench: str | None = None  # None: from the answer rows, else vicuna
    questions_path: str | Path | None = None
    samples: int = 1
    temperature: float | None = None  # None: 0 for one sample, 1.0 for several (they must differ)
    max_tokens: int = 1024
    parse_retries: int = 2
    concurrency: int = 8
    limit: int | None = None
    question_ids: list | None = None
    cache_path: str | Path | None = None  # default OUT/cache.jsonl; share one across runs to reuse calls
    seconds_per_call: float = 20.0  # for the time estimate only

    @property
    def judge_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.samples == 1 else 1.0


@dataclass
class JudgeResult:
    out_dir: Path
    estimate: dict
    judged: int = 0
    skipped: int = 0
    failed_reviews: int = 0
    endpoint_failures: list = field(default_factory=list)
    stats: ReviewStats = field(default_factory=ReviewStats)


def _bench_of(answers: AnswerSet, config: JudgeConfig) -> str:
    if config.bench:
        return config.bench
    if answers.path is not None:
        rows = read_rows(answers.path)
        if rows and rows[0].get("bench"):
            return rows[0]["bench"]
    return "vicuna"


def _meta(config: JudgeConfig, model: AnswerSet, baseline: AnswerSet, bench: str) -> dict:
    return {
        "kind": "pairwise",
        "bench": bench,
        "model": model.model,
        "baseline": baseline.model,
        "answers": str(model.path),
        "baseline_answers": str(baseline.path),
        "judge": {
            "model": config.endpoint.model,
            "base_url": config.endpoint.base_url,
            "prompts_version": PROMPTS_VERSION,
            "samples": config.samples,
            "temperature": config.judge_temperature,
            "max_tokens": config.max_tokens,
            "parse_retries": config.parse_retries,
        },
    }


def _check_meta(out_dir: Path, meta: dict) -> None:
    """Refuse to mix judgments made with other settings into one folder."""
    path = out_dir / "meta.json"
    if path.is_file():
        old = json.loads(path.read_text())
        keys = ("model", "baseline", "bench")
        if any(old.get(k) != meta[k] for k in keys) or {
            k: v for k, v in old.get("judge", {}).items() if k != "base_url"
        } != {k: v for k, v in meta["judge"].items() if k != "base_url"}:
            raise EvaluationError(
                f"{out_dir} holds judgments made with other settings ({path}); use another --out to judge with new "
                "settings (pass --cache to reuse the calls already made)"
            )


def _write_meta(out_dir: Path, meta: dict) -> None:
    path = out_dir / "meta.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=2) + "\n")


def pairs_for(question: Question, model: AnswerSet, baseline: AnswerSet) -> dict[str, list[dict]]:
    """The judge messages of both orders for one question."""
    a, b = model.turns[str(question.question_id)], baseline.turns[str(question.question_id)]
    return {"model_first": pairwise_messages(question, a, b), "baseline_first": pairwise_messages(question, b, a)}


def estimate(todo: list[Question], model: AnswerSet, baseline: AnswerSet, reviewer: Reviewer, config) -> dict:
    """Calls still to make (not cached), their prompt tokens (chars / 4) and the most completion tokens, a time."""
    calls = cached = prompt_chars = 0
    for question in todo:
        for messages in pairs_for(question, model, baseline).values():
            for sample in range(config.samples):
                if reviewer.is_cached(messages, sample):
                    cached += 1
                else:
                    calls += 1
                    prompt_chars += sum(len(m["content"]) for m in messages)
    seconds = calls * config.seconds_per_call / max(1, config.concurrency)
    return {
        "questions": len(todo),
        "calls": calls,
        "cached_calls": cached,
        "prompt_tokens": prompt_chars // CHARS_PER_TOKEN,
        "max_completion_tokens": calls * config.max_tokens,
        "minutes": round(seconds / 60, 1),
    }


def format_estimate(est: dict, judge_model: str) -> str:
    return (
        f"judge {judge_model}: {est['questions']} questions to judge, {est['calls']} calls to make "
        f"({est['cached_calls']} cached), ~{est['prompt_tokens']:,} prompt tokens + at most "
        f"{est['max_completion_tokens']:,} completion tokens (parse retries add more), ~{est['minutes']} min"
    )


async def _judge_question(reviewer: Reviewer, question, model, baseline, samples: int) -> list[dict]:
    pairs = pairs_for(question, model, baseline)
    jobs = [(order, sample) for order in ORDERS for sample in range(samples)]
    results = await asyncio.gather(
        *(reviewer.review(pairs[order], parse_pair_scores, sample) for order, sample in jobs)
    )
    reviews = []
    for (order, sample), review in zip(jobs, results):
        scores = review.value
        if scores is None:
            model_score = baseline_score = None
        elif order == "model_first":
            model_score, baseline_score = scores
        else:
            baseline_score, model_score = scores
        reviews.append(
            {
                "order": order,
                "sample": sample,
                "text": review.text,
                "scores": scores,  # as the judge wrote them: [Assistant 1, Assistant 2]
                "model_score": model_score,
                "baseline_score": baseline_score,
                "error": review.error,
                "attempts": review.attempts,
            }
        )
    return reviews


def _judgment_row(question: Question, model: AnswerSet, baseline: AnswerSet, reviews: list[dict]) -> dict:
    """One line of judgments.jsonl; single-turn texts as strings, multi-turn ones as lists."""
    qid = str(question.question_id)

    def text(turns: list[str]):
        return turns[0] if len(question.turns) == 1 else turns[: len(question.turns)]

    return {
        "question_id": question.question_id,
        "category": question.category,
        "question": text(question.turns),
        "answer": text(model.turns[qid]),
        "baseline_answer": text(baseline.turns[qid]),
        "model": model.model,
        "baseline": baseline.model,
        "reviews": reviews,
    }


async def ajudge(config: JudgeConfig, dry_run: bool = False, on_estimate=None) -> JudgeResult:
    """Async core of :func:`run_judge`."""
    if config.samples < 1 or config.concurrency < 1 or config.parse_retries < 0:
        raise EvaluationError("--samples and --concurrency must be at least 1, --parse-retries at least 0")
    model = load_answers(config.answers)
    baseline = load_answers(config.baseline)
    if model.model == baseline.model:
        baseline.model = f"{baseline.model} (baseline)"
    bench = _bench_of(model, config)
    questions = select_questions(load_questions(bench, config.questions_path), config.limit, config.question_ids)
    usable = [q for q in questions if str(q.question_id) in model.turns and str(q.question_id) in baseline.turns]
    if not usable:
        raise EvaluationError(f"no question of {bench} has an answer in both {model.path} and {baseline.path}")
    if len(usable) < len(questions):
        logger.warning(
            "%d questions lack an answer from the model or the baseline; judging %d",
            len(questions) - len(usable),
            len(usable),
        )
    out_dir = Path(config.out_dir)
    meta = _meta(config, model, baseline, bench)
    _check_meta(out_dir, meta)
    done = {str(row["question_id"]) for row in read_rows(out_dir / "judgments.jsonl")}
    todo = [q for q in usable if str(q.question_id) not in done]
    cache = JudgeCache(config.cache_path or out_dir / "cache.jsonl")
    reviewer = Reviewer(
        None,
        config.endpoint,
        cache,
        config.judge_temperature,
        config.max_tokens,
        config.parse_retries,
        config.concurrency,
    )
    result = JudgeResult(
        out_dir=out_dir,
        estimate=estimate(todo, model, baseline, reviewer, config),
        skipped=len(usable) - len(todo),
        stats=reviewer.stats,
    )
    logger.info(format_estimate(result.estimate, config.endpoint.model))
    if on_estimate is not None:
        on_estimate(result.estimate)
    if dry_run or not todo:
        return result
    _write_meta(out_dir, meta)
    reviewer.client = client = make_client(config.endpoint)

    async def one(question: Question):
        return question, await _judge_question(reviewer, question, model, baseline, config.samples)

    tasks = [asyncio.ensure_future(one(q)) for q in todo]
    try:
        with JsonlAppender(out_dir / "judgments.jsonl") as out, tqdm(total=len(todo), desc="judge") as bar:
            for next_done in asyncio.as_completed(tasks):
                try:
                    question, reviews = await next_done
                except EndpointError as err:
                    if not err.retryable:
                        raise
                    logger.warning("judging a question failed after retries (re-run to resume): %s", err)
                    result.endpoint_failures.append(str(err))
                else:
                    out.write(_judgment_row(question, model, baseline, reviews))
                    result.judged += 1
                    result.failed_reviews += sum(r["error"] is not None for r in reviews)
                bar.update(1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        cache.close()
        await client.close()
    return result


def run_judge(config: JudgeConfig, dry_run: bool = False, on_estimate=None) -> JudgeResult:
    """Judge ``config.answers`` against ``config.baseline``; ``dry_run`` only computes the estimate.

    ``on_estimate(dict)`` is called with the cost/time estimate before the first call is made.
    """
    return asyncio.run(ajudge(config, dry_run=dry_run, on_estimate=on_estimate))


if __name__ == "__main__":
    from openchat_hf.evaluation.cli import run_step

    run_step("judge")
