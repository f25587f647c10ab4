"""Judge protocols: our default and the published ones as presets (``--protocol``), each a single object that says how
prompts are built, how verdicts are read, with which sampling settings, and what a parse failure becomes.

- ``openchat-hf`` (default): our prompts (:mod:`openchat_hf.evaluation.prompts`), evidence first, both orders, parse
  retries, failures excluded, a JSON verdict when the endpoint accepts ``response_format``.
- ``openchat-v1``: OpenChat v1's ``ochat/evaluation/openai_eval.py`` (tag ``OpenChat-v1``): its ``vicuna`` prompts
  (JSON-list scores last), both orders, temperature 0.2, 1024 tokens, its line-then-JSON-list parser; an unreadable
  review scores 0 and 0, as in v1.
- ``vicuna-2023``: FastChat's 2023 ``fastchat/eval/eval_gpt_review.py``: scores on the first line (a Python tuple for
  math), one order (the model as Assistant 1), temperature 0.2, 1024 tokens. FastChat read the first line and asked for
  a manual fix otherwise; the manual fix is our reader (:func:`parsing.parse_pair_scores`).
- ``mt-bench``: FastChat ``llm_judge`` single-answer grading from ``judge_prompts.jsonl`` (``single-v1``,
  ``single-math-v1`` with the reference for math / reasoning / coding, their ``-multi-turn`` forms for turn 2),
  temperature 0, 2048 tokens, the first ``[[rating]]`` (else ``[rating]``); a failure is ``-1``, as FastChat writes it.

The OpenChat and FastChat prompts are Apache-2.0 and shipped in ``openchat_hf/resources/judge_prompts/`` with their
licences. Every judgment and report records the protocol's name and the SHA-256 of its prompt files.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from openchat_hf.evaluation import prompts as ours
from openchat_hf.evaluation.errors import EvaluationError
from openchat_hf.evaluation.parsing import ScoreParseError, parse_pair_scores, parse_rating
from openchat_hf.evaluation.questions import Question
from openchat_hf.resources import RESOURCES_DIR

PROMPTS_DIR = RESOURCES_DIR / "judge_prompts"
DEFAULT_PROTOCOL = "openchat-hf"
BOTH_ORDERS = ("model_first", "baseline_first")
MT_BENCH_REFERENCE_CATEGORIES = frozenset({"math", "reasoning", "coding", "arena-hard-200"})


@dataclass(frozen=True)
class Protocol:
    """One judge protocol. ``None`` settings are the user's choice (ours); a preset fixes each of them."""

    name: str
    summary: str
    orders: tuple[str, ...]
    temperature: float | None  # None: 0 for one sample, 1.0 for several
    max_tokens: int
    grade_max_tokens: int
    samples: int | None  # None: --samples (default 1)
    parse_retries: int | None  # None: --parse-retries (default 2)
    failure_scores: tuple[float, float] | None  # what an unreadable pairwise review scores; None: excluded
    json_verdicts: bool  # ask for a JSON verdict where the endpoint accepts response_format
    prompt_files: tuple[str, ...]  # relative to PROMPTS_DIR; hashed into prompts_sha256
    pair_messages: Callable[[Question, list[str], list[str]], list[dict]] | None
    parse_pair: Callable[[str], list[float]] | None
    grade_messages: Callable[[Question, list[str], int], tuple[list[dict], str]] | None
    parse_rating: Callable[[str], float] | None
    rating_failure: float | None = None  # what FastChat writes for an unreadable rating (-1); None: null
    # Verdict protocols (MT-bench pairwise): one game per turn, both orders, [[A]] / [[B]] / [[C]] verdicts.
    pair_turn_messages: Callable[[Question, list[str], list[str], int], tuple[list[dict], str]] | None = None
    parse_verdict: Callable[[str], str] | None = None
    source: str = ""

    @property
    def verdicts(self) -> bool:
        return self.pair_turn_messages is not None

    @property
    def prompts_sha256(self) -> str:
        return prompts_sha256(self)

    def record(self) -> dict:
        return {"name": self.name, "prompts_sha256": self.prompts_sha256}


@cache
def _hash_files(names: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0" + (PROMPTS_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()


def prompts_sha256(protocol: Protocol) -> str:
    """SHA-256 of the protocol's prompt files (ours: of its prompt strings)."""
    if protocol.prompt_files:
        return _hash_files(protocol.prompt_files)
    texts = {k: v for k, v in vars(ours).items() if k.isupper() and isinstance(v, str | dict)}
    return hashlib.sha256(json.dumps(texts, sort_keys=True).encode()).hexdigest()


@cache
def _jsonl(name: str) -> list[dict]:
    with open(PROMPTS_DIR / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _single_turn(question: Question, protocol: str) -> str:
    if len(question.turns) != 1:
        raise EvaluationError(
            f"the {protocol} protocol judges single-turn questions (Vicuna-bench); question {question.question_id} "
            f"has {len(question.turns)} turns: use --protocol mt-bench or openchat-hf"
        )
    return question.turns[0]


def _vicuna_style_messages(folder: str, question: Question, answer_1: list[str], answer_2: list[str]) -> list[dict]:
    """The reviewer of the question's category (coding, math, else general) and its prompt, as both sources did it."""
    reviewers = {r["category"]: r for r in _jsonl(f"{folder}/reviewer.jsonl")}
    reviewer = reviewers.get(question.category, reviewers["general"])
    prompt = {p["prompt_id"]: p for p in _jsonl(f"{folder}/prompt.jsonl")}[reviewer["prompt_id"]]
    user = prompt["prompt_template"].format(
        question=_single_turn(question, folder), answer_1=answer_1[0], answer_2=answer_2[0], **prompt["defaults"]
    )
    return [{"role": "system", "content": prompt["system_prompt"]}, {"role": "user", "content": user}]


def parse_openchat_v1(text: str) -> list[float]:
    """OpenChat v1's ``chat_completion_and_parse_score``, rule for rule: from the last line up, a line of two
    space-separated numbers (commas read as spaces); else, from the last line up, a two-item JSON list."""
    review = text.strip("\n")
    for line in reversed(review.split("\n")):
        sp = line.replace(",", " ").split(" ")
        if len(sp) == 2:
            try:
                return [float(sp[0]), float(sp[1])]
            except ValueError:
                pass
    for line in reversed(review.split("\n")):
        for match in re.findall(r"\[[^\[\]]*\]", line):
            try:
                sp = json.loads(match)
                if len(sp) == 2:
                    return [float(sp[0]), float(sp[1])]
            except (ValueError, TypeError):
                pass
    raise ScoreParseError("no score pair in the review (OpenChat v1 scores it 0 0)")


def parse_fastchat_first_line(text: str) -> list[float]:
    """FastChat 2023's ``parse_score``: the first line holds exactly two numbers (commas read as spaces)."""
    sp = text.split("\n")[0].replace(",", " ").split(" ")
    if len(sp) == 2:
        try:
            return [float(sp[0]), float(sp[1])]
        except ValueError:
            pass
    raise ScoreParseError("the first line is not a score pair")


def parse_vicuna_2023(text: str) -> list[float]:
    """FastChat's first-line rule; where it failed, FastChat asked for a manual fix: our reader stands in for it."""
    try:
        return parse_fastchat_first_line(text)
    except ScoreParseError:
        return parse_pair_scores(text)


_ONE_SCORE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_ONE_SCORE_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")


def parse_mt_bench_rating(text: str) -> float:
    """FastChat ``llm_judge``: the first ``[[x]]``, else the first ``[x]``, read with ``ast.literal_eval``."""
    match = _ONE_SCORE.search(text) or _ONE_SCORE_BACKUP.search(text)
    if not match:
        raise ScoreParseError("no [[rating]] in the judgment (FastChat writes -1)")
    return float(ast.literal_eval(match.groups()[0]))


def _mt_bench_messages(
    question: Question, prompt: tuple[str, str], turn: int, answers: dict[str, list[str]]
) -> tuple[list[dict], str]:
    """FastChat's judge prompt ``prompt`` (its name without / with a reference answer) for ``turn``, filled with
    ``answers`` (``{"answer": turns}`` or ``{"answer_a": ..., "answer_b": ...}``; ``_1`` / ``_2`` on turn 2)."""
    prompts = {p["name"]: p for p in _jsonl("mt_bench/judge_prompts.jsonl")}
    ref = question.category in MT_BENCH_REFERENCE_CATEGORIES
    name = prompt[ref] + ("-multi-turn" if turn == 2 else "")
    kwargs = {}
    if ref:
        if not question.reference:
            raise EvaluationError(f"question {question.question_id} ({question.category}) needs a reference answer")
        kwargs["ref_answer_1"] = question.reference[0]
        if turn == 2:
            kwargs["ref_answer_2"] = question.reference[1]
    if turn == 2:
        kwargs.update(question_1=question.turns[0], question_2=question.turns[1])
        for key, turns in answers.items():
            kwargs.update({f"{key}_1": turns[0], f"{key}_2": turns[1]})
    else:
        kwargs["question"] = question.turns[0]
        kwargs.update({key: turns[0] for key, turns in answers.items()})
    template = prompts[name]
    user = template["prompt_template"].format(**kwargs)
    return [{"role": "system", "content": template["system_prompt"]}, {"role": "user", "content": user}], name


def mt_bench_grade_messages(question: Question, answers: list[str], turn: int) -> tuple[list[dict], str]:
    """FastChat's single-answer judge prompt for ``turn`` (1 or 2) and its name."""
    if turn not in (1, 2):
        raise EvaluationError(f"the mt-bench protocol grades turns 1 and 2, not {turn}")
    return _mt_bench_messages(question, ("single-v1", "single-math-v1"), turn, {"answer": answers})


def parse_mt_bench_verdict(text: str) -> str:
    """FastChat ``llm_judge``'s ``[[A]]`` rule: ``[[A]]`` anywhere, else ``[[B]]``, else ``[[C]]`` (tie): A | B | tie."""
    for mark, verdict in (("[[A]]", "A"), ("[[B]]", "B"), ("[[C]]", "tie")):
        if mark in text:
            return verdict
    raise ScoreParseError("no [[A]] / [[B]] / [[C]] verdict (FastChat records an error)")


def mt_bench_pair_messages(question: Question, answer_a: list[str], answer_b: list[str], turn: int):
    """FastChat's pairwise judge prompt for the game of ``turn`` (``pair-v2`` / ``pair-math-v1`` and their
    ``-multi-turn`` forms) and its name."""
    return _mt_bench_messages(
        question, ("pair-v2", "pair-math-v1"), turn, {"answer_a": answer_a, "answer_b": answer_b}
    )


def _ours_grade(question: Question, answers: list[str], turn: int) -> tuple[list[dict], str]:
    return ours.grade_messages(question, answers, turn), "openchat-hf-grade"


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            name="openchat-hf",
            summary="ours: evidence first, both orders, k samples, failures excluded, JSON verdicts where accepted",
            orders=BOTH_ORDERS,
            temperature=None,
            max_tokens=1024,
            grade_max_tokens=1024,
            samples=None,
            parse_retries=None,
            failure_scores=None,
            json_verdicts=True,
            prompt_files=(),
            pair_messages=ours.pairwise_messages,
            parse_pair=parse_pair_scores,
            grade_messages=_ours_grade,
            parse_rating=parse_rating,
            source="openchat_hf/evaluation/prompts.py",
        ),
        Protocol(
            name="openchat-v1",
            summary="OpenChat v1 (tag OpenChat-v1): its prompts, both orders, T=0.2, unreadable = 0 0",
            orders=BOTH_ORDERS,
            temperature=0.2,
            max_tokens=1024,
            grade_max_tokens=1024,
            samples=1,
            parse_retries=0,
            failure_scores=(0.0, 0.0),
            json_verdicts=False,
            prompt_files=("openchat_v1/prompt.jsonl", "openchat_v1/reviewer.jsonl"),
            pair_messages=lambda q, a, b: _vicuna_style_messages("openchat_v1", q, a, b),
            parse_pair=parse_openchat_v1,
            grade_messages=None,
            parse_rating=None,
            source="imoneoi/openchat@OpenChat-v1 ochat/evaluation/{openai_eval.py,vicuna/}",
        ),
        Protocol(
            name="vicuna-2023",
            summary="FastChat 2023 Vicuna-bench reviewer: scores first, one order, T=0.2",
            orders=("model_first",),
            temperature=0.2,
            max_tokens=1024,
            grade_max_tokens=1024,
            samples=1,
            parse_retries=0,
            failure_scores=None,
            json_verdicts=False,
            prompt_files=("vicuna_2023/prompt.jsonl", "vicuna_2023/reviewer.jsonl"),
            pair_messages=lambda q, a, b: _vicuna_style_messages("vicuna_2023", q, a, b),
            parse_pair=parse_vicuna_2023,
            grade_messages=None,
            parse_rating=None,
            source="lm-sys/FastChat fastchat/eval (eval_gpt_review.py, table/prompt.jsonl, table/reviewer.jsonl)",
        ),
        Protocol(
            name="mt-bench",
            summary="FastChat llm_judge: single grading (first [[x]], -1) and pairwise ([[A]]/[[B]]/[[C]] per turn)",
            orders=BOTH_ORDERS,
            temperature=0.0,
            max_tokens=2048,
            grade_max_tokens=2048,
            samples=1,
            parse_retries=0,
            failure_scores=None,
            json_verdicts=False,
            prompt_files=("mt_bench/judge_prompts.jsonl",),
            pair_messages=None,
            parse_pair=None,
            grade_messages=mt_bench_grade_messages,
            parse_rating=parse_mt_bench_rating,
            rating_failure=-1.0,
            pair_turn_messages=mt_bench_pair_messages,
            parse_verdict=parse_mt_bench_verdict,
            source="lm-sys/FastChat fastchat/llm_judge (common.py, data/judge_prompts.jsonl)",
        ),
    )
}


def get_protocol(name: str | None) -> Protocol:
    """The protocol called ``name`` (``None``: ours); a clear error naming the choices."""
    name = name or DEFAULT_PROTOCOL
    if name not in PROTOCOLS:
        raise EvaluationError(f"unknown protocol {name!r}: choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def prompt_files_exist() -> list[Path]:
    """Every shipped prompt file (for the packaging test)."""
    return [PROMPTS_DIR / f for p in PROTOCOLS.values() for f in p.prompt_files]
