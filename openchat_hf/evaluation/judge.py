"""Step 2: pairwise judging of a model's answers against a baseline's (evidence first, both orders, k samples).

Output folder: ``meta.json`` (model, baseline, judge, prompts version, samples) and ``judgments.jsonl`` (one row per
question whose reviews are all done; parse failures are recorded in the row, never scored) plus ``cache.jsonl``.
Running the same command again judges only what is missing, and every call already made comes from the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from openchat_hf.evaluation.cache import JudgeCache
from openchat_hf.evaluation.client import EndpointConfig, EndpointError, make_client
from openchat_hf.evaluation.errors import EvaluationError
from openchat_hf.evaluation.jobs import run_jobs
from openchat_hf.evaluation.metrics import AGGREGATIONS
from openchat_hf.evaluation.parsing import read_pair_json
from openchat_hf.evaluation.prompts import (
    PAIRWISE_FORMAT,
    PAIRWISE_FORMAT_JSON,
    PAIRWISE_SCHEMA,
    PROMPTS_VERSION,
    as_json_prompt,
)
from openchat_hf.evaluation.protocols import DEFAULT_PROTOCOL, Protocol, get_protocol
from openchat_hf.evaluation.questions import Question, load_questions, select_questions
from openchat_hf.evaluation.records import AnswerSet, failure_row, load_answers, read_rows, slugify, write_rows
from openchat_hf.evaluation.reviewer import JSON_MODES, Reviewer, ReviewStats, Task

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4  # rough, for the estimate printed before a run


@dataclass
class JudgeConfig:
    """Settings of ``eval judge``. ``None`` settings come from the protocol (or its default)."""

    answers: str | Path
    baseline: str | Path
    endpoint: EndpointConfig
    out_dir: str | Path
    bench: str | None = None  # None: from the answer rows, else vicuna
    questions_path: str | Path | None = None
    protocol: str | None = None  # None: ours (openchat-hf); see protocols.PROTOCOLS
    samples: int | None = None
    temperature: float | None = None  # None: the protocol's; ours: 0 for one sample, 1.0 for several
    max_tokens: int | None = None
    parse_retries: int | None = None
    aggregation: str = "balanced"  # k > 1: "balanced" (per order, then orders) or "faireval" (all samples pooled)
    json_mode: str | None = None  # auto | json_schema | json_object | off; None: auto for ours, off for presets
    redo_stale: bool = False  # judge again the questions whose stored judgment was made from other inputs
    concurrency: int = 8
    limit: int | None = None
    question_ids: list | None = None
    cache_path: str | Path | None = None  # default OUT/cache.jsonl; share one across runs to reuse calls
    seconds_per_call: float = 20.0  # for the time estimate only

    @property
    def spec(self) -> Protocol:
        return get_protocol(self.protocol)

    def resolved(self) -> dict:
        """The judge settings this run uses, and which of them override the preset's."""
        spec = self.spec
        samples = pick_setting(self.samples, spec.samples, 1)
        default_temperature = 0.0 if samples == 1 else 1.0
        settings = {
            "samples": samples,
            "temperature": pick_setting(self.temperature, spec.temperature, default_temperature),
            "max_tokens": pick_setting(self.max_tokens, spec.max_tokens, 1024),
            "parse_retries": pick_setting(self.parse_retries, spec.parse_retries, 2),
            "aggregation": "fastchat-pair" if spec.verdicts else self.aggregation,
            "json_mode": self.json_mode or ("auto" if spec.json_verdicts else "off"),
        }
        fixed = {"samples": spec.samples, "temperature": spec.temperature, "max_tokens": spec.max_tokens}
        fixed["parse_retries"] = spec.parse_retries
        fixed["json_mode"] = None if spec.json_verdicts else "off"
        if spec.name == DEFAULT_PROTOCOL:
            fixed = {}
        overrides = sorted(k for k, v in fixed.items() if v is not None and settings[k] != v)
        return {**settings, "overrides": overrides}

    @property
    def judge_temperature(self) -> float:
        return self.resolved()["temperature"]


def pick_setting(value, preset, default):
    return value if value is not None else preset if preset is not None else default


@dataclass
class JudgeResult:
    out_dir: Path
    estimate: dict
    judged: int = 0
    skipped: int = 0
    failed_reviews: int = 0
    redone: int = 0
    endpoint_failures: list = field(default_factory=list)
    stats: ReviewStats = field(default_factory=ReviewStats)
    verdict_mode: str = "off"
    fastchat_file: Path | None = None


def _bench_of(answers: AnswerSet, config: JudgeConfig) -> str:
    if config.bench:
        return config.bench
    if answers.path is not None:
        rows = read_rows(answers.path)
        if rows and rows[0].get("bench"):
            return rows[0]["bench"]
    return "mt_bench" if config.spec.verdicts else "vicuna"


def _meta(config: JudgeConfig, model: AnswerSet, baseline: AnswerSet, bench: str, question_ids: list) -> dict:
    settings = config.resolved()
    spec = config.spec
    return {
        "kind": "pairwise",
        "bench": bench,
        "model": model.model,
        "baseline": baseline.model,
        "answers": str(model.path),
        "baseline_answers": str(baseline.path),
        "protocol": spec.record(),
        "question_ids": question_ids,
        "judge": {
            "model": config.endpoint.model,
            "base_url": config.endpoint.base_url,
            "prompts_version": PROMPTS_VERSION if spec.name == DEFAULT_PROTOCOL else spec.name,
            "protocol": spec.name,
            "prompts_sha256": spec.prompts_sha256,
            **settings,
        },
    }


def _differences(old: dict, new: dict, keys) -> list[str]:
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def check_meta(out_dir: Path, meta: dict, keys=("model", "baseline", "bench")) -> None:
    """Refuse to mix results made with other settings into one folder, naming each setting that differs."""
    path = out_dir / "meta.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    judge_keys = sorted((set(old.get("judge", {})) | set(meta["judge"])) - {"base_url", "overrides"})
    diffs = _differences(old, meta, keys) + [
        f"judge {d}" for d in _differences(old.get("judge", {}), meta["judge"], judge_keys)
    ]
    if diffs:
        raise EvaluationError(
            f"{out_dir} holds results made with other settings ({'; '.join(diffs)}); use another --out for the new "
            "settings (pass --cache to reuse the calls already made)"
        )


def write_meta(out_dir: Path, meta: dict) -> None:
    path = out_dir / "meta.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    tmp.replace(path)


def text_sha256(value) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode("utf-8")).hexdigest()


def judgment_inputs(question: Question, model: AnswerSet, baseline: AnswerSet) -> dict:
    """Hashes of the texts a judgment was made from (the settings are the folder's meta.json)."""
    qid = str(question.question_id)
    return {
        "question": text_sha256(question.turns),
        "answer": text_sha256(model.turns[qid][: len(question.turns)]),
        "baseline_answer": text_sha256(baseline.turns[qid][: len(question.turns)]),
    }


INPUT_NAMES = {"question": "the question", "answer": "the model's answer", "baseline_answer": "the baseline's answer"}


def stale_rows(rows: list[dict], current: dict[str, dict]) -> dict[str, list[str]]:
    """``{input name: [question ids]}`` of stored rows whose inputs differ from today's (rows without hashes too)."""
    stale: dict[str, list[str]] = {}
    for row in rows:
        qid = str(row["question_id"])
        if qid not in current:
            continue
        stored = row.get("inputs") or {}
        for name, digest in current[qid].items():
            if stored.get(name) != digest and qid not in stale.get(name, []):
                stale.setdefault(name, []).append(qid)
    return stale


def describe_stale(stale: dict[str, list[str]]) -> str:
    parts = []
    for name, ids in stale.items():
        more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
        parts.append(f"{INPUT_NAMES.get(name, name)} changed for questions {', '.join(ids[:5])}{more}")
    return "; ".join(parts)


def rewrite_without(path: Path, drop) -> int:
    """Rewrite a JSONL file without the rows for which ``drop(row)`` is true (atomically); returns how many went."""
    rows = read_rows(path)
    kept = [row for row in rows if not drop(row)]
    write_rows(path, kept)
    return len(rows) - len(kept)


def pair_task(spec: Protocol, question: Question, answer_1: list[str], answer_2: list[str]) -> Task:
    """The judge task of one order: the protocol's prompt, and ours also as a JSON-verdict prompt."""
    messages = spec.pair_messages(question, answer_1, answer_2)
    task = Task(messages=messages, parse=spec.parse_pair)
    if spec.json_verdicts:
        task.json_messages = as_json_prompt(messages, PAIRWISE_FORMAT, PAIRWISE_FORMAT_JSON)
        task.json_schema, task.json_name, task.read_json = PAIRWISE_SCHEMA, "pairwise_verdict", read_pair_json
    return task


def pairs_for(question: Question, model: AnswerSet, baseline: AnswerSet, spec: Protocol | None = None) -> dict:
    """The judge tasks of the protocol's orders for one question."""
    spec = spec or get_protocol(None)
    a, b = model.turns[str(question.question_id)], baseline.turns[str(question.question_id)]
    tasks = {"model_first": (a, b), "baseline_first": (b, a)}
    return {order: pair_task(spec, question, *tasks[order]) for order in spec.orders}


def estimate(todo: list[Question], model: AnswerSet, baseline: AnswerSet, reviewer: Reviewer, config) -> dict:
    """Calls still to make (not cached), their prompt tokens (chars / 4) and the most completion tokens, a time."""
    calls = cached = prompt_chars = 0
    settings = config.resolved()
    for question in todo:
        for task in _tasks(question, model, baseline, config.spec).values():
            for sample in range(settings["samples"]):
                if reviewer.is_cached(task, sample):
                    cached += 1
                else:
                    calls += 1
                    prompt_chars += sum(len(m["content"]) for m in task.messages)
    seconds = calls * config.seconds_per_call / max(1, config.concurrency)
    return {
        "questions": len(todo),
        "calls": calls,
        "cached_calls": cached,
        "prompt_tokens": prompt_chars // CHARS_PER_TOKEN,
        "max_completion_tokens": calls * settings["max_tokens"],
        "minutes": round(seconds / 60, 1),
    }


def format_estimate(est: dict, judge_model: str) -> str:
    return (
        f"judge {judge_model}: {est['questions']} questions to judge, {est['calls']} calls to make "
        f"({est['cached_calls']} cached), ~{est['prompt_tokens']:,} prompt tokens + at most "
        f"{est['max_completion_tokens']:,} completion tokens (parse retries add more), ~{est['minutes']} min"
    )


def verdict_tasks(question: Question, model: AnswerSet, baseline: AnswerSet, spec: Protocol) -> dict:
    """MT-bench pairwise: ``{(order, turn): Task}``, one game per turn, both orders (A = the first answer)."""
    a, b = model.turns[str(question.question_id)], baseline.turns[str(question.question_id)]
    tasks = {}
    for turn in range(1, len(question.turns) + 1):
        for order, (first, second) in (("model_first", (a, b)), ("baseline_first", (b, a))):
            messages, name = spec.pair_turn_messages(question, first, second, turn)
            tasks[(order, turn)] = Task(messages=messages, parse=spec.parse_verdict, json_name=name)
    return tasks


def _tasks(question, model, baseline, spec: Protocol) -> dict:
    if spec.verdicts:
        return verdict_tasks(question, model, baseline, spec)
    return pairs_for(question, model, baseline, spec)


VERDICT_POINTS = {"model": (1.0, 0.0), "baseline": (0.0, 1.0), "tie": (0.5, 0.5)}


async def _judge_games(reviewer: Reviewer, question, model, baseline, spec: Protocol) -> dict[int, list[dict]]:
    """``{turn: reviews}`` of one question under a verdict protocol (FastChat's g1 = model first, g2 = swapped)."""
    tasks = verdict_tasks(question, model, baseline, spec)
    results = await asyncio.gather(*(reviewer.review(task) for task in tasks.values()))
    games: dict[int, list[dict]] = {}
    for (order, turn), review, task in zip(tasks, results, tasks.values()):
        winner = None
        if review.value is not None:
            first, second = ("model", "baseline") if order == "model_first" else ("baseline", "model")
            winner = {"A": first, "B": second, "tie": "tie"}[review.value]
        points = VERDICT_POINTS.get(winner, (None, None))
        games.setdefault(turn, []).append(
            {
                "order": order,
                "sample": 0,
                "turn": turn,
                "text": review.text,
                "verdict": review.value,  # as the judge wrote it: A (the first answer), B or tie
                "winner": winner,
                "scores": None,
                "model_score": points[0],
                "baseline_score": points[1],
                "error": review.error,
                "scored_as_failure": False,
                "attempts": review.attempts,
                "verdict_source": review.verdict_source,
                "prompt_name": task.json_name,
                "user_prompt": task.messages[-1]["content"],
            }
        )
    return games


def fastchat_pair_rows(rows: list[dict], judge_model: str) -> list[dict]:
    """Verdict rows as FastChat ``llm_judge`` pairwise rows (``model_judgment/<judge>_pair.jsonl``)."""
    out = []
    for row in rows:
        by_order = {r["order"]: r for r in row["reviews"]}
        g1, g2 = by_order["model_first"], by_order["baseline_first"]
        as_fastchat = {"model": "model_1", "baseline": "model_2", "tie": "tie", None: "error"}
        out.append(
            {
                "question_id": row["question_id"],
                "model_1": row["model"],
                "model_2": row["baseline"],
                "g1_winner": as_fastchat[g1["winner"]],
                "g2_winner": as_fastchat[g2["winner"]],
                "judge": [judge_model, g1["prompt_name"]],
                "g1_user_prompt": g1["user_prompt"],
                "g1_judgment": g1["text"],
                "g2_user_prompt": g2["user_prompt"],
                "g2_judgment": g2["text"],
                "turn": row["turn"],
                "tstamp": row.get("tstamp", 0.0),
            }
        )
    return out


async def _judge_question(reviewer: Reviewer, question, model, baseline, samples: int, spec: Protocol) -> list[dict]:
    tasks = pairs_for(question, model, baseline, spec)
    jobs = [(order, sample) for order in tasks for sample in range(samples)]
    results = await asyncio.gather(*(reviewer.review(tasks[order], sample) for order, sample in jobs))
    reviews = []
    for (order, sample), review in zip(jobs, results):
        scores = review.value
        scored_as_failure = False
        if scores is None and spec.failure_scores is not None:  # OpenChat v1: an unreadable review scores 0 0
            scores, scored_as_failure = list(spec.failure_scores), True
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
                "scored_as_failure": scored_as_failure,
                "attempts": review.attempts,
                "verdict_source": review.verdict_source,
            }
        )
    return reviews


def _judgment_row(
    question: Question, model: AnswerSet, baseline: AnswerSet, reviews: list[dict], spec, turn: int | None = None
) -> dict:
    """One line of judgments.jsonl; single-turn texts as strings, multi-turn ones as lists."""
    qid = str(question.question_id)

    def text(turns: list[str]):
        return turns[0] if len(question.turns) == 1 else turns[: len(question.turns)]

    sources = {r["verdict_source"] for r in reviews if r["error"] is None}
    return {
        "question_id": question.question_id,
        "category": question.category,
        "question": text(question.turns),
        "answer": text(model.turns[qid]),
        "baseline_answer": text(baseline.turns[qid]),
        "model": model.model,
        "baseline": baseline.model,
        "protocol": spec.name,
        "prompts_sha256": spec.prompts_sha256,
        "verdict_source": "json" if sources == {"json"} else "text",
        "inputs": judgment_inputs(question, model, baseline),
        **({"turn": turn, "tstamp": time.time()} if turn is not None else {}),
        "reviews": reviews,
    }


def _resumable_rows(judgments: Path, usable: list[Question], model, baseline, config, dry_run: bool):
    """The stored rows a run may keep: stale ones refused (or removed with ``redo_stale``), and for MT-bench pairwise
    the rows of a question whose games are not all there removed (they are redone). Returns (rows, removed)."""
    spec = config.spec
    rows = read_rows(judgments)
    current = {str(q.question_id): judgment_inputs(q, model, baseline) for q in usable}
    stale = stale_rows(rows, current)
    redone = 0
    if stale:
        if not config.redo_stale:
            raise EvaluationError(
                f"{judgments} holds judgments made from other inputs: {describe_stale(stale)}; pass --redo-stale to "
                "judge them again, or use another --out"
            )
        if not dry_run:
            ids = {qid for qids in stale.values() for qid in qids}
            redone = rewrite_without(judgments, lambda row: str(row["question_id"]) in ids)
            rows = read_rows(judgments)
    if spec.verdicts:
        turns: dict[str, set] = {}
        for row in rows:
            turns.setdefault(str(row["question_id"]), set()).add(row.get("turn"))
        expected = {str(q.question_id): set(range(1, len(q.turns) + 1)) for q in usable}
        partial = {qid for qid, seen in turns.items() if qid in expected and seen != expected[qid]}
        if partial and not dry_run:
            rewrite_without(judgments, lambda row: str(row["question_id"]) in partial)
            rows = read_rows(judgments)
    return rows, redone


async def ajudge(config: JudgeConfig, dry_run: bool = False, on_estimate=None) -> JudgeResult:
    """Async core of :func:`run_judge`."""
    spec = config.spec
    settings = config.resolved()
    if spec.pair_messages is None and not spec.verdicts:
        raise EvaluationError(
            f"the {spec.name} protocol grades single answers: run `eval grade --protocol {spec.name}`"
        )
    if settings["samples"] < 1 or config.concurrency < 1 or settings["parse_retries"] < 0:
        raise EvaluationError("--samples and --concurrency must be at least 1, --parse-retries at least 0")
    if settings["aggregation"] not in AGGREGATIONS:
        raise EvaluationError(f"--aggregation must be one of {', '.join(AGGREGATIONS)}")
    if settings["json_mode"] not in JSON_MODES:
        raise EvaluationError(f"--json-verdicts must be one of {', '.join(JSON_MODES)}")
    if settings["overrides"]:
        logger.warning(
            "%s with %s changed: no longer the published protocol", spec.name, ", ".join(settings["overrides"])
        )
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
            "%d questions lack an answer from the model or the baseline; judging %d (the report shows the coverage)",
            len(questions) - len(usable),
            len(usable),
        )
    out_dir = Path(config.out_dir)
    meta = _meta(config, model, baseline, bench, [q.question_id for q in questions])
    check_meta(out_dir, meta)
    judgments = out_dir / "judgments.jsonl"
    rows, redone = _resumable_rows(judgments, usable, model, baseline, config, dry_run)
    done = {str(row["question_id"]) for row in rows}
    todo = [q for q in usable if str(q.question_id) not in done]
    cache = JudgeCache(config.cache_path or out_dir / "cache.jsonl")
    reviewer = Reviewer.from_settings(None, config.endpoint, cache, settings, config.concurrency)
    result = JudgeResult(
        out_dir=out_dir,
        estimate=estimate(todo, model, baseline, reviewer, config),
        skipped=len(usable) - len(todo),
        redone=redone,
        stats=reviewer.stats,
    )
    logger.info(format_estimate(result.estimate, config.endpoint.model))
    if on_estimate is not None:
        on_estimate(result.estimate)
    if dry_run or not todo:
        cache.close()
        if not dry_run and out_dir.is_dir():
            write_meta(out_dir, meta)  # the question list of this run (coverage)
            if spec.verdicts and rows:
                result.fastchat_file = write_fastchat_pair_file(out_dir, rows, config.endpoint.model)
        return result
    write_meta(out_dir, meta)
    reviewer.client = client = make_client(config.endpoint)

    async def one(question: Question):
        if spec.verdicts:
            return await _judge_games(reviewer, question, model, baseline, spec)
        return await _judge_question(reviewer, question, model, baseline, settings["samples"], spec)

    def written(out, question: Question, reviews) -> None:
        if spec.verdicts:
            for turn, game in reviews.items():
                out.write(_judgment_row(question, model, baseline, game, spec, turn=turn))
                result.failed_reviews += sum(r["error"] is not None for r in game)
        else:
            out.write(_judgment_row(question, model, baseline, reviews, spec))
            result.failed_reviews += sum(r["error"] is not None for r in reviews)
        result.judged += 1

    def failed(question: Question, err: EndpointError) -> dict:
        logger.warning("question %s: judging failed (re-run to resume): %s", question.question_id, err)
        result.endpoint_failures.append(f"question {question.question_id}: {err}")
        return failure_row("judge", question.question_id, err)

    try:
        result.verdict_mode = await reviewer.resolve_json_mode() if settings["json_mode"] != "off" else "off"
        await run_jobs(
            todo,
            one,
            out_path=judgments,
            failures_path=out_dir / "failures.jsonl",
            desc="judge",
            on_result=written,
            on_failure=failed,
        )
    finally:
        cache.close()
        await client.close()
    if spec.verdicts:
        result.fastchat_file = write_fastchat_pair_file(out_dir, read_rows(judgments), config.endpoint.model)
    return result


def write_fastchat_pair_file(out_dir: Path, rows: list[dict], judge_model: str) -> Path:
    """``OUT/model_judgment/<judge>_pair.jsonl``, which FastChat's ``show_result.py --mode pairwise-baseline`` reads."""
    path = out_dir / "model_judgment" / f"{slugify(judge_model)}_pair.jsonl"
    return write_rows(path, fastchat_pair_rows(rows, judge_model))


def run_judge(config: JudgeConfig, dry_run: bool = False, on_estimate=None) -> JudgeResult:
    """Judge ``config.answers`` against ``config.baseline``; ``dry_run`` only computes the estimate.

    ``on_estimate(dict)`` is called with the cost/time estimate before the first call is made.
    """
    return asyncio.run(ajudge(config, dry_run=dry_run, on_estimate=on_estimate))


if __name__ == "__main__":
    from openchat_hf.evaluation.runner import run_step

    run_step("judge")
