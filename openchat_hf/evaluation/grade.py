"""Step 3: MT-bench single-answer grading: a ``[[rating]]`` from 1 to 10 per turn, with the shipped GPT-4 reference
answers for math, reasoning and coding questions.

Output folder: ``meta.json`` and ``grades.jsonl`` (one row per model and question, both turns rated or failed) plus
``cache.jsonl``. Resumable and cached like the pairwise judge.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from openchat_hf.evaluation.cache import JudgeCache
from openchat_hf.evaluation.client import EndpointConfig, EndpointError, make_client
from openchat_hf.evaluation.errors import EvaluationError
from openchat_hf.evaluation.jobs import run_jobs
from openchat_hf.evaluation.judge import (
    check_meta,
    describe_stale,
    pick_setting,
    rewrite_without,
    text_sha256,
    write_meta,
)
from openchat_hf.evaluation.parsing import read_rating_json
from openchat_hf.evaluation.prompts import (
    GRADE_FORMAT,
    GRADE_FORMAT_JSON,
    GRADE_SCHEMA,
    PROMPTS_VERSION,
    as_json_prompt,
)
from openchat_hf.evaluation.protocols import DEFAULT_PROTOCOL, Protocol, get_protocol
from openchat_hf.evaluation.questions import REFERENCE_CATEGORIES, Question, load_questions, select_questions
from openchat_hf.evaluation.records import failure_row, load_answers, read_rows, slugify, write_rows
from openchat_hf.evaluation.reviewer import JSON_MODES, Reviewer, ReviewStats, Task

logger = logging.getLogger(__name__)


@dataclass
class GradeConfig:
    """Settings of ``eval grade``. ``None`` settings come from the protocol (or its default)."""

    answers: list[str | Path]
    endpoint: EndpointConfig
    out_dir: str | Path
    bench: str = "mt_bench"
    questions_path: str | Path | None = None
    protocol: str | None = None  # None: ours; "mt-bench": FastChat llm_judge's single grading
    temperature: float | None = None
    max_tokens: int | None = None
    parse_retries: int | None = None
    json_mode: str | None = None  # auto | json_schema | json_object | off; None: auto for ours, off for presets
    redo_stale: bool = False
    concurrency: int = 8
    limit: int | None = None
    question_ids: list | None = None
    cache_path: str | Path | None = None

    @property
    def spec(self) -> Protocol:
        return get_protocol(self.protocol)

    def resolved(self) -> dict:
        spec = self.spec
        settings = {
            "temperature": pick_setting(self.temperature, spec.temperature, 0.0),
            "max_tokens": pick_setting(self.max_tokens, spec.grade_max_tokens, 1024),
            "parse_retries": pick_setting(self.parse_retries, spec.parse_retries, 2),
            "json_mode": self.json_mode or ("auto" if spec.json_verdicts else "off"),
        }
        fixed = {"temperature": spec.temperature, "max_tokens": spec.grade_max_tokens}
        fixed |= {"parse_retries": spec.parse_retries, "json_mode": None if spec.json_verdicts else "off"}
        if spec.name == DEFAULT_PROTOCOL:
            fixed = {}
        overrides = sorted(k for k, v in fixed.items() if v is not None and settings[k] != v)
        return {**settings, "overrides": overrides}


@dataclass
class GradeResult:
    out_dir: Path
    graded: int = 0
    skipped: int = 0
    failed_ratings: int = 0
    calls_estimate: int = 0
    redone: int = 0
    endpoint_failures: list = field(default_factory=list)
    stats: ReviewStats = field(default_factory=ReviewStats)
    fastchat_file: Path | None = None


def grade_task(spec: Protocol, question: Question, turns: list[str], turn: int) -> tuple[Task, str]:
    messages, prompt_name = spec.grade_messages(question, turns, turn)
    task = Task(messages=messages, parse=spec.parse_rating)
    if spec.json_verdicts:
        task.json_messages = as_json_prompt(messages, GRADE_FORMAT, GRADE_FORMAT_JSON)
        task.json_schema, task.json_name, task.read_json = GRADE_SCHEMA, "rating_verdict", read_rating_json
    return task, prompt_name


def grade_inputs(question: Question, turns: list[str]) -> dict:
    return {
        "question": text_sha256(question.turns),
        "answer": text_sha256(turns[: len(question.turns)]),
        "reference": text_sha256(question.reference),
    }


def fastchat_rows(rows: list[dict], judge_model: str) -> list[dict]:
    """Our grade rows as FastChat ``llm_judge`` single-grading rows (``model_judgment/<judge>_single.jsonl``)."""
    out = []
    for row in rows:
        for turn in row["turns"]:
            score = turn.get("fastchat_score", turn["rating"] if turn["rating"] is not None else -1)
            out.append(
                {
                    "question_id": row["question_id"],
                    "model": row["model"],
                    "judge": [judge_model, turn.get("prompt_name", "")],
                    "user_prompt": turn.get("user_prompt", ""),
                    "judgment": turn["text"],
                    "score": score,
                    "turn": turn["turn"],
                    "tstamp": row.get("tstamp", 0.0),
                }
            )
    return out


def write_fastchat_file(out_dir: Path, rows: list[dict], judge_model: str) -> Path:
    """``OUT/model_judgment/<judge>_single.jsonl``, which FastChat's ``show_result.py --input-file`` reads as is."""
    path = out_dir / "model_judgment" / f"{slugify(judge_model)}_single.jsonl"
    return write_rows(path, fastchat_rows(rows, judge_model))


async def agrade(config: GradeConfig) -> GradeResult:  # noqa: C901
    """Async core of :func:`run_grade`."""
    if not config.answers:
        raise EvaluationError("give at least one --answers file")
    spec = config.spec
    settings = config.resolved()
    if spec.grade_messages is None:
        raise EvaluationError(f"the {spec.name} protocol is pairwise: run `eval judge --protocol {spec.name}`")
    if settings["json_mode"] not in JSON_MODES:
        raise EvaluationError(f"--json-verdicts must be one of {', '.join(JSON_MODES)}")
    if settings["overrides"]:
        logger.warning(
            "%s with %s changed: no longer the published protocol", spec.name, ", ".join(settings["overrides"])
        )
    questions = select_questions(
        load_questions(config.bench, config.questions_path), config.limit, config.question_ids
    )
    missing_refs = [q.question_id for q in questions if q.category in REFERENCE_CATEGORIES and not q.reference]
    if missing_refs and spec.name != DEFAULT_PROTOCOL:
        raise EvaluationError(f"the {spec.name} protocol needs reference answers for questions {missing_refs}")
    if missing_refs:
        logger.warning("no reference answer for questions %s: graded without one", missing_refs)
    answer_sets = [load_answers(path) for path in config.answers]
    out_dir = Path(config.out_dir)
    meta = {
        "kind": "single",
        "bench": config.bench,
        "protocol": spec.record(),
        "models": sorted({a.model for a in answer_sets}),
        "question_ids": [q.question_id for q in questions],
        "judge": {
            "model": config.endpoint.model,
            "base_url": config.endpoint.base_url,
            "prompts_version": PROMPTS_VERSION if spec.name == DEFAULT_PROTOCOL else spec.name,
            "protocol": spec.name,
            "prompts_sha256": spec.prompts_sha256,
            "samples": 1,
            **settings,
        },
    }
    check_meta(out_dir, meta, keys=("bench",))
    grades_path = out_dir / "grades.jsonl"
    rows = read_rows(grades_path)
    by_id = {str(q.question_id): q for q in questions}
    stale: dict[str, list[str]] = {}
    current = {}
    for answers in answer_sets:
        for question in questions:
            turns = answers.turns.get(str(question.question_id))
            if turns is not None:
                current[(answers.model, str(question.question_id))] = grade_inputs(question, turns)
    stale_keys = set()
    for row in rows:
        key = (row["model"], str(row["question_id"]))
        if key not in current or str(row["question_id"]) not in by_id:
            continue
        stored = row.get("inputs") or {}
        for name, digest in current[key].items():
            if stored.get(name) != digest:
                stale.setdefault(name, []).append(f"{row['model']}/{row['question_id']}")
                stale_keys.add(key)
    result = GradeResult(out_dir=out_dir)
    if stale:
        if not config.redo_stale:
            raise EvaluationError(
                f"{grades_path} holds grades made from other inputs: {describe_stale(stale)}; pass --redo-stale to "
                "grade them again, or use another --out"
            )
        result.redone = rewrite_without(grades_path, lambda r: (r["model"], str(r["question_id"])) in stale_keys)
        rows = read_rows(grades_path)
    if (out_dir / "meta.json").is_file():  # coverage: every model graded into this folder
        meta["models"] = sorted(
            set(json.loads((out_dir / "meta.json").read_text()).get("models", [])) | set(meta["models"])
        )
    write_meta(out_dir, meta)
    done = {(row["model"], str(row["question_id"])) for row in rows}
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
    result.skipped = len(done)
    result.calls_estimate = sum(len(q.turns) for _, q in jobs)
    logger.info("grade with %s: %d answers, about %d calls", config.endpoint.model, len(jobs), result.calls_estimate)
    if jobs:
        await _grade_jobs(config, spec, settings, jobs, out_dir, result)
    if spec.name == "mt-bench":
        result.fastchat_file = write_fastchat_file(out_dir, read_rows(grades_path), config.endpoint.model)
    return result


async def _grade_jobs(config: GradeConfig, spec: Protocol, settings: dict, jobs, out_dir: Path, result) -> None:
    cache = JudgeCache(config.cache_path or out_dir / "cache.jsonl")
    client = make_client(config.endpoint)
    reviewer = Reviewer.from_settings(client, config.endpoint, cache, settings, config.concurrency)
    result.stats = reviewer.stats

    async def one(job):
        answers, question = job
        turns = answers.turns[str(question.question_id)]
        graded = [grade_task(spec, question, turns, t) for t in range(1, len(question.turns) + 1)]
        return graded, await asyncio.gather(*(reviewer.review(task) for task, _ in graded))

    def written(out, job, value) -> None:
        (answers, question), (graded, reviews) = job, value
        out.write(_grade_row(spec, answers, question, graded, reviews))
        result.graded += 1
        result.failed_ratings += sum(r.error is not None for r in reviews)

    def failed(job, err: EndpointError) -> dict:
        answers, question = job
        logger.warning("grading %s failed (re-run to resume): %s", question.question_id, err)
        result.endpoint_failures.append(f"{answers.model} question {question.question_id}: {err}")
        return failure_row("grade", question.question_id, err, model=answers.model)

    try:
        if settings["json_mode"] != "off":
            await reviewer.resolve_json_mode()
        await run_jobs(
            jobs,
            one,
            out_path=out_dir / "grades.jsonl",
            failures_path=out_dir / "failures.jsonl",
            desc="grade",
            on_result=written,
            on_failure=failed,
        )
    finally:
        cache.close()
        await client.close()


def _grade_row(spec: Protocol, answers, question: Question, graded, reviews) -> dict:
    turns = []
    for i, ((task, prompt_name), r) in enumerate(zip(graded, reviews), 1):
        turn = {
            "turn": i,
            "rating": r.value,
            "text": r.text,
            "error": r.error,
            "attempts": r.attempts,
            "verdict_source": r.verdict_source,
            "prompt_name": prompt_name,
            "user_prompt": task.messages[-1]["content"],
        }
        if spec.rating_failure is not None:  # FastChat writes -1 for an unreadable rating
            turn["fastchat_score"] = r.value if r.value is not None else spec.rating_failure
        turns.append(turn)
    sources = {t["verdict_source"] for t in turns if t["error"] is None}
    return {
        "question_id": question.question_id,
        "category": question.category,
        "model": answers.model,
        "protocol": spec.name,
        "prompts_sha256": spec.prompts_sha256,
        "verdict_source": "json" if sources == {"json"} else "text",
        "inputs": grade_inputs(question, answers.turns[str(question.question_id)]),
        "tstamp": time.time(),
        "turns": turns,
    }


def run_grade(config: GradeConfig) -> GradeResult:
    """Grade every answer file of ``config.answers`` on MT-bench (or another multi-turn question set)."""
    return asyncio.run(agrade(config))


if __name__ == "__main__":
    from openchat_hf.evaluation.runner import run_step

    run_step("grade")
