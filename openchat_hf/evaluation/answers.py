"""Step 1: answer a question set with any OpenAI-compatible endpoint, concurrently and resumably.

Output: ``OUT/<model>.jsonl``, FastChat's answer format (``question_id``, ``model_id``, ``choices[0].turns``) plus the
generation settings of each row. A re-run skips the questions already in the file.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from openchat_hf.evaluation.client import EndpointConfig, EndpointError, chat, make_client
from openchat_hf.evaluation.errors import EvaluationError
from openchat_hf.evaluation.jobs import run_jobs
from openchat_hf.evaluation.questions import Question, load_questions, select_questions
from openchat_hf.evaluation.records import failure_row, read_rows, slugify

logger = logging.getLogger(__name__)

# Default sampling temperature per question category (FastChat's llm_judge settings); Vicuna-bench used 0.7.
MT_BENCH_TEMPERATURES = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
}
VICUNA_TEMPERATURE = 0.7


@dataclass
class AnswerConfig:
    """Settings of ``eval answers``."""

    endpoint: EndpointConfig
    out_dir: str | Path
    bench: str = "vicuna"
    questions_path: str | Path | None = None
    concurrency: int = 8
    max_tokens: int = 1024
    temperature: float | None = None  # None: the bench's default (per category for MT-bench)
    system_prompt: str | None = None
    limit: int | None = None
    question_ids: list | None = None
    out_name: str | None = None  # default: the model name, slugified

    @property
    def out_path(self) -> Path:
        return Path(self.out_dir) / f"{self.out_name or slugify(self.endpoint.model)}.jsonl"

    @property
    def failures_path(self) -> Path:
        """Where the questions that still failed after the retries are recorded (one JSON line each)."""
        return self.out_path.with_suffix(".failures.jsonl")

    def generation(self, question: Question) -> dict:
        """The generation settings of one question (recorded in its row)."""
        if self.temperature is not None:
            temperature = self.temperature
        elif self.bench == "mt_bench":
            temperature = MT_BENCH_TEMPERATURES.get(question.category, 0.7)
        else:
            temperature = VICUNA_TEMPERATURE
        settings = {"model": self.endpoint.model, "temperature": temperature, "max_tokens": self.max_tokens}
        if self.system_prompt:
            settings["system_prompt"] = self.system_prompt
        return settings


@dataclass
class AnswerResult:
    """What one ``generate_answers`` run did."""

    path: Path
    written: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)


def _check_resume(rows: list[dict], by_id: dict[str, Question], config: AnswerConfig) -> set[str]:
    """Ids already answered; refuses to mix rows made with other generation settings into one file."""
    done = set()
    for row in rows:
        qid = str(row.get("question_id"))
        question = by_id.get(qid)
        if question is not None and "generation" in row and row["generation"] != config.generation(question):
            raise EvaluationError(
                f"{config.out_path} already holds answers made with other settings ({row['generation']} vs "
                f"{config.generation(question)}); use another --out or the same settings to resume"
            )
        done.add(qid)
    return done


async def _answer_one(client, question: Question, config: AnswerConfig) -> dict:
    settings = config.generation(question)
    messages = [{"role": "system", "content": config.system_prompt}] if config.system_prompt else []
    turns, usage_total = [], {"prompt_tokens": 0, "completion_tokens": 0}
    for turn in question.turns:  # MT-bench: the second turn sees the first question and answer
        messages.append({"role": "user", "content": turn})
        text, usage = await chat(
            client,
            config.endpoint.model,
            messages,
            malformed_retries=config.endpoint.malformed_retries,
            retry_delay=config.endpoint.retry_delay,
            temperature=settings["temperature"],
            max_tokens=settings["max_tokens"],
        )
        messages.append({"role": "assistant", "content": text})
        turns.append(text)
        for key in usage_total:
            usage_total[key] += int(usage.get(key) or 0)
    return {
        "question_id": question.question_id,
        "answer_id": uuid.uuid4().hex,
        "model_id": config.endpoint.model,
        "bench": config.bench,
        "category": question.category,
        "choices": [{"index": 0, "turns": turns}],
        "generation": settings,
        "endpoint": config.endpoint.base_url,
        "usage": usage_total,
        "tstamp": time.time(),
    }


async def agenerate_answers(config: AnswerConfig) -> AnswerResult:
    """Async core of :func:`generate_answers`."""
    if config.concurrency < 1:
        raise EvaluationError("--concurrency must be at least 1")
    questions = select_questions(
        load_questions(config.bench, config.questions_path), config.limit, config.question_ids
    )
    by_id = {str(q.question_id): q for q in questions}
    result = AnswerResult(path=config.out_path)
    done = _check_resume(read_rows(config.out_path), by_id, config)
    todo = [q for q in questions if str(q.question_id) not in done]
    result.skipped = len(questions) - len(todo)
    if result.skipped:
        logger.info("%s: %d answers already there, %d to go", config.out_path, result.skipped, len(todo))
    if not todo:
        return result
    client = make_client(config.endpoint)
    semaphore = asyncio.Semaphore(config.concurrency)

    async def bounded(question: Question) -> dict:
        async with semaphore:
            return await _answer_one(client, question, config)

    def written(out, question: Question, row: dict) -> None:
        out.write(row)
        result.written += 1

    def failed(question: Question, err: EndpointError) -> dict:
        logger.warning("question %s failed after retries (re-run to resume): %s", question.question_id, err)
        result.failed.append(f"question {question.question_id}: {err}")
        return failure_row("answers", question.question_id, err)

    try:
        await run_jobs(
            todo,
            bounded,
            out_path=config.out_path,
            failures_path=config.failures_path,
            desc=f"answers {config.endpoint.model}",
            on_result=written,
            on_failure=failed,
        )
    finally:
        await client.close()
    return result


def generate_answers(config: AnswerConfig) -> AnswerResult:
    """Answer the questions of ``config.bench`` with ``config.endpoint``; appends to ``config.out_path``.

    Questions whose requests still fail after the SDK's retries are left out of the file (``result.failed``), so
    running the same command again completes the set.
    """
    return asyncio.run(agenerate_answers(config))


if __name__ == "__main__":
    from openchat_hf.evaluation.runner import run_step

    run_step("answers")
