"""Benchmark decontamination: drop conversations whose user turns are evaluation prompts.

A conversation is contaminated when one of its user turns matches a benchmark prompt by one of four rules, checked
on normalised words (:func:`openchat_hf.data.minhash.normalize_words`: case, punctuation, apostrophes and Unicode
width don't matter):

* ``benchmark_exact``: the turn *is* the prompt;
* ``benchmark_short``: (prompts shorter than the n-gram size) the prompt is a whole sentence run of the turn (it starts
  and ends at a sentence boundary ``. ! ? : ;``, a new line, a quote or a bracket) and the turn has at most
  ``short_max_extra_words`` other words: "Can you help me with this: <prompt>" is caught, "<prompt> as a nurse
  working night shifts?" and a long message that quotes the prompt in passing are not;
* ``benchmark_ngram``: (prompts of at least ``ngram`` words) at least ``ngram_threshold`` of the prompt's distinct
  13-word n-grams occur in the turn (the GPT-3 / Llama reports' 13-grams, as a share so a common 13-word phrase
  alone doesn't drop a conversation);
* ``benchmark_minhash``: (prompts of at least ``ngram`` words) the MinHash-estimated Jaccard similarity of the
  turn's and the prompt's word 3-gram sets is at least ``minhash_threshold`` (catches edited copies).

Prompts with fewer than ``min_prompt_words`` words ("hi", "Continue") and short follow-up turns of multi-turn
benchmarks (MT-bench's "Can you parallelize it?", meaningless without their first turn) are ignored, so greetings
and one-liners never match. Every rule is evaluated on every turn, so the report can count each rule's hits on its
own as well as the drops (attributed to the first rule in the order above).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from openchat_hf.data.errors import DataPipelineError
from openchat_hf.data.minhash import (
    band_keys,
    lsh_bands,
    ngram_hashes,
    normalize_words,
    signatures,
    similarity,
    word_hashes,
)

EXACT = "benchmark_exact"
SHORT = "benchmark_short"
NGRAM = "benchmark_ngram"
MINHASH = "benchmark_minhash"
RULES = (EXACT, SHORT, NGRAM, MINHASH)

_TEXT_KEYS = ("turns", "instruction", "prompt", "question", "text", "content")
_ID_KEYS = ("question_id", "id", "uid", "idx")
_BOUNDARY = re.compile(r"[.!?:;\n\"“”«»()\[\]{}<>]+")


@dataclass(frozen=True)
class Prompt:
    """One benchmark prompt: ``id`` names the file / benchmark and the question (``mt_bench/81/turn2``)."""

    id: str
    text: str
    follow_up: bool = False


@dataclass(frozen=True)
class Match:
    rule: str
    prompt_id: str
    turn: int  # index in the conversation's messages
    score: float  # 1.0 for exact / short, the n-gram share or the estimated Jaccard


@dataclass
class DecontaminationConfig:
    """Rules and thresholds (see the module docstring).

    Attributes:
        ngram: n-gram size of the n-gram rule; also the length from which a prompt is "long".
        ngram_threshold: share of a long prompt's distinct n-grams that must occur in one user turn.
        minhash_threshold: estimated Jaccard similarity (word 3-grams) of a user turn and a long prompt.
        minhash_shingle: words per shingle of the MinHash rule.
        num_perm: MinHash signature size.
        min_prompt_words: prompts with fewer words are ignored.
        short_max_extra_words: most words a user turn may have besides a short prompt it contains.
    """

    ngram: int = 13
    ngram_threshold: float = 0.5
    minhash_threshold: float = 0.5
    minhash_shingle: int = 3
    num_perm: int = 128
    min_prompt_words: int = 5
    short_max_extra_words: int = 12

    def __post_init__(self) -> None:
        for name in ("ngram_threshold", "minhash_threshold"):
            if not 0 < getattr(self, name) <= 1:
                raise DataPipelineError(f"{name} must be in (0, 1], got {getattr(self, name)}.")
        if self.ngram < 2 or self.minhash_shingle < 1 or self.min_prompt_words < 1:
            raise DataPipelineError("ngram must be >= 2, minhash_shingle and min_prompt_words >= 1.")


# ------------------------------------------------------------------------------------------------------ prompts
BUNDLED_BENCHMARKS = ("vicuna_bench", "mt_bench")


def bundled_prompts(names: Sequence[str] = BUNDLED_BENCHMARKS) -> list[Prompt]:
    """The prompts of the bundled benchmarks ``names``: Vicuna-bench (80) and MT-bench (80 questions, 160 turns)."""
    from openchat_hf.resources import MT_BENCH_DIR, VICUNA_BENCH_DIR

    files = {"vicuna_bench": VICUNA_BENCH_DIR / "question.jsonl", "mt_bench": MT_BENCH_DIR / "question.jsonl"}
    unknown = [n for n in names if n not in files]
    if unknown:
        raise DataPipelineError(
            f"Unknown bundled benchmark(s) {', '.join(unknown)}; use {', '.join(BUNDLED_BENCHMARKS)}."
        )
    return [prompt for name in names for prompt in _read_prompts(files[name], name)]


def load_prompts(path: str | Path) -> list[Prompt]:
    """Prompts of a JSONL / JSON file: rows that are strings, or objects with ``turns`` (FastChat / Arena-Hard,
    strings or ``{"content"}``), ``instruction`` (AlpacaEval, plus ``input`` if any), ``prompt``, ``question``,
    ``text`` or ``content``; ids from ``question_id`` / ``id`` / ``uid`` / ``idx`` or the row number."""
    return _read_prompts(Path(path), Path(path).stem)


def _read_prompts(path: Path, name: str) -> list[Prompt]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataPipelineError(f"Cannot read the benchmark prompts file {path}: {err}.") from None
    try:
        if path.suffix == ".jsonl" or (not text.lstrip().startswith("[") and "\n" in text.strip()):
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            rows = json.loads(text)
            rows = rows if isinstance(rows, list) else [rows]
    except json.JSONDecodeError as err:
        raise DataPipelineError(f"{path} is not JSON / JSON Lines: {err}.") from None
    prompts = []
    for i, row in enumerate(rows):
        turns = _row_turns(row)
        if turns is None:
            raise DataPipelineError(
                f"{path}: row {i} has no prompt text (a string, or an object with one of {', '.join(_TEXT_KEYS)})."
            )
        qid = next((row[k] for k in _ID_KEYS if isinstance(row, dict) and row.get(k) is not None), i)
        for t, turn in enumerate(turns):
            suffix = f"/turn{t + 1}" if t else ""
            prompts.append(Prompt(f"{name}/{qid}{suffix}", turn, follow_up=t > 0))
    return prompts


def _row_turns(row) -> list[str] | None:
    if isinstance(row, str):
        return [row]
    if not isinstance(row, dict):
        return None
    for key in _TEXT_KEYS:
        value = row.get(key)
        if isinstance(value, str) and value.strip():
            if key == "instruction" and isinstance(row.get("input"), str) and row["input"].strip():
                value = value + "\n" + row["input"]
            return [value]
        if isinstance(value, list) and value:
            turns = [v if isinstance(v, str) else v.get("content") if isinstance(v, dict) else None for v in value]
            if all(isinstance(t, str) for t in turns):
                return turns
    return None


# ------------------------------------------------------------------------------------------------ the matcher
@dataclass
class Decontaminator:
    """Matches user turns against benchmark prompts; build with :func:`build_decontaminator`."""

    prompts: list[Prompt]
    config: DecontaminationConfig = field(default_factory=DecontaminationConfig)

    def __post_init__(self) -> None:
        cfg = self.config
        self.ignored: list[str] = []
        self.texts = {p.id: p.text for p in self.prompts}
        self.files: list[str] = []
        self._exact: dict[tuple[str, ...], str] = {}
        self._short: dict[tuple[str, str], list[tuple[tuple[str, ...], str]]] = {}
        long_words, self._long_ids = [], []
        for p in self.prompts:
            words = normalize_words(p.text)
            if len(words) < cfg.min_prompt_words or (p.follow_up and len(words) < cfg.ngram):
                self.ignored.append(p.id)
                continue
            self._exact.setdefault(tuple(words), p.id)
            if len(words) < cfg.ngram:
                self._short.setdefault((words[0], words[1]), []).append((tuple(words), p.id))
            else:
                long_words.append(words)
                self._long_ids.append(p.id)
        self._max_short = max((len(w) for ps in self._short.values() for w, _ in ps), default=0)
        self._max_exact = max(map(len, self._exact), default=0)
        # n-gram rule: sorted distinct n-gram hashes of the long prompts -> which prompts have them.
        if long_words:
            flat, lengths = word_hashes(long_words)
            hashes, counts = ngram_hashes(flat, lengths, cfg.ngram, short=False)
            owner = np.repeat(np.arange(len(long_words)), counts)
            pairs = np.unique(np.stack([hashes, owner.astype(np.uint64)], axis=1), axis=0)
            self._gram_hash, self._gram_owner = pairs[:, 0], pairs[:, 1].astype(np.int64)
            self._grams_per_prompt = np.bincount(self._gram_owner, minlength=len(long_words))
            self._sigs = signatures(long_words, cfg.minhash_shingle, cfg.num_perm)
            self._bands = lsh_bands(cfg.minhash_threshold, cfg.num_perm)
            self._band_keys = np.sort(band_keys(self._sigs, *self._bands), axis=0)
            shingles = np.maximum(np.array([len(w) for w in long_words]) - cfg.minhash_shingle + 1, 1)
            # A turn whose shingle count is outside [t * min, max / t] can't reach Jaccard t with any prompt.
            self._shingle_range = (cfg.minhash_threshold * shingles.min(), shingles.max() / cfg.minhash_threshold)
        else:
            self._gram_hash = np.zeros(0, dtype=np.uint64)

    @property
    def num_prompts(self) -> int:
        return len(self.prompts) - len(self.ignored)

    def check(self, conversations: Sequence[Sequence[dict[str, str]]]) -> list[dict[str, Match]]:
        """For each conversation, ``{rule: first Match}`` of every rule that fires (empty: clean)."""
        cfg = self.config
        results: list[dict[str, Match]] = [{} for _ in conversations]
        long_turns: list[tuple[int, int]] = []
        long_words: list[list[str]] = []
        for c, messages in enumerate(conversations):
            for t, m in enumerate(messages):
                if m["role"] != "user":
                    continue
                words = normalize_words(m["content"])
                if not words:
                    continue
                found = results[c]
                pid = self._exact.get(tuple(words)) if len(words) <= self._max_exact else None
                if pid is not None and EXACT not in found:
                    found[EXACT] = Match(EXACT, pid, t, 1.0)
                if SHORT not in found and self._short and len(words) <= self._max_short + cfg.short_max_extra_words:
                    pid = self._short_match(m["content"], words)
                    if pid is not None:
                        found[SHORT] = Match(SHORT, pid, t, 1.0)
                if len(self._gram_hash) and len(words) >= cfg.minhash_shingle:
                    long_turns.append((c, t))
                    long_words.append(words)
        if long_words:
            self._check_long(long_turns, long_words, results)
        return results

    def _short_match(self, text: str, words: list[str]) -> str | None:
        """A short prompt that is a whole run of sentences of this turn, with few other words around it."""
        starts, n = {0}, 0
        for piece in _BOUNDARY.split(text):
            n += len(normalize_words(piece))
            starts.add(n)
        extra = self.config.short_max_extra_words
        for i in sorted(starts):
            for prompt, pid in self._short.get(tuple(words[i : i + 2]), ()):
                end = i + len(prompt)
                if end in starts and tuple(words[i:end]) == prompt and len(words) - len(prompt) <= extra:
                    return pid
        return None

    def _check_long(self, where: list[tuple[int, int]], docs: list[list[str]], results: list[dict]) -> None:
        cfg = self.config
        flat, lengths = word_hashes(docs)
        # n-gram rule: distinct (turn, prompt, n-gram) hits / the prompt's n-gram count.
        hashes, counts = ngram_hashes(flat, lengths, cfg.ngram, short=False)
        turn_of = np.repeat(np.arange(len(docs)), counts)
        lo = np.searchsorted(self._gram_hash, hashes, side="left")
        hi = np.searchsorted(self._gram_hash, hashes, side="right")
        hit = hi > lo
        if hit.any():
            rows = []
            for w in np.flatnonzero(hit):  # hits are rare: benchmark n-grams in training text
                for j in range(lo[w], hi[w]):
                    rows.append((turn_of[w], self._gram_owner[j], j))
            triples = np.unique(np.array(rows, dtype=np.int64), axis=0)
            pairs, per_pair = np.unique(triples[:, :2], axis=0, return_counts=True)
            share = per_pair / self._grams_per_prompt[pairs[:, 1]]
            for (turn, prompt), s in sorted(zip(pairs.tolist(), share.tolist()), key=lambda x: (x[0][0], -x[1])):
                c, t = where[turn]
                if s >= cfg.ngram_threshold and NGRAM not in results[c]:
                    results[c][NGRAM] = Match(NGRAM, self._long_ids[prompt], t, round(s, 4))
        # MinHash rule, on turns whose length allows the threshold.
        shingles = np.maximum(lengths - cfg.minhash_shingle + 1, 1)
        low, high = self._shingle_range
        eligible = np.flatnonzero((shingles >= low) & (shingles <= high))
        if not len(eligible):
            return
        sigs = signatures([docs[i] for i in eligible], cfg.minhash_shingle, cfg.num_perm)
        # LSH: only turns that share a band with some prompt are compared with every prompt.
        keys = band_keys(sigs, *self._bands)
        shared = np.zeros(len(sigs), dtype=bool)
        for b in range(keys.shape[1]):
            pos = np.minimum(np.searchsorted(self._band_keys[:, b], keys[:, b]), len(self._band_keys) - 1)
            shared |= self._band_keys[pos, b] == keys[:, b]
        candidates = np.flatnonzero(shared)
        for start in range(0, len(candidates), 256):
            rows = candidates[start : start + 256]
            sim = similarity(sigs[rows, None, :], self._sigs[None, :, :])
            best = sim.argmax(axis=1)
            for row, p, s in zip(rows.tolist(), best.tolist(), sim[np.arange(len(best)), best].tolist()):
                c, t = where[eligible[row]]
                if s >= cfg.minhash_threshold and MINHASH not in results[c]:
                    results[c][MINHASH] = Match(MINHASH, self._long_ids[p], t, round(s, 4))


def build_decontaminator(
    extra_files: Sequence[str | Path] = (),
    *,
    bundled: bool | Sequence[str] = True,
    config: DecontaminationConfig | None = None,
) -> Decontaminator:
    """The bundled benchmarks' prompts (all with ``True``, those named, none with ``False``) plus ``extra_files``."""
    names = BUNDLED_BENCHMARKS if bundled is True else tuple(bundled or ())
    prompts = bundled_prompts(names)
    for path in extra_files:
        prompts += load_prompts(path)
    decontaminator = Decontaminator(prompts, config or DecontaminationConfig())
    decontaminator.files = ([f"bundled: {', '.join(names)}"] if names else []) + [str(p) for p in extra_files]
    return decontaminator


def first_match(found: dict[str, Match]) -> Match | None:
    """The match a drop is attributed to: the first rule in :data:`RULES` order."""
    return next((found[r] for r in RULES if r in found), None)


def decontaminate_step(
    cleaned, decontaminator: Decontaminator, batch_size: int = 2048
) -> tuple[dict[int, dict], dict]:
    """The pipeline step over the cleaned dataset's kept rows (``reason == ""``): ``({row: drop-log fields},
    report summary)``; every rule's hits are counted on their own in ``summary["hits_by_rule"]``."""
    from tqdm.auto import tqdm

    drops: dict[int, dict] = {}
    hits = dict.fromkeys(RULES, 0)
    reasons = cleaned.select_columns(["reason"])["reason"]
    rows = [i for i, r in enumerate(reasons) if not r]
    messages_column = cleaned.select_columns(["messages"])  # one Python list per batch (a Column is lazy)
    with tqdm(total=len(rows), desc="decontaminate", unit="conv") as bar:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            messages = messages_column.select(chunk)[:]["messages"]
            for row, conv, found in zip(chunk, messages, decontaminator.check(messages)):
                if found:
                    drops[row] = drop_fields(first_match(found), conv, decontaminator)
                    for rule in found:
                        hits[rule] += 1
            bar.update(len(chunk))
    summary = {
        "prompts": decontaminator.num_prompts,
        "ignored_prompts": len(decontaminator.ignored),
        "files": list(decontaminator.files),
        "hits_by_rule": hits,
        "dropped": len(drops),
    }
    return drops, summary


def prompt_text(decontaminator: Decontaminator, prompt_id: str) -> str:
    return decontaminator.texts.get(prompt_id, "")


def drop_fields(match: Match, messages: Sequence[dict[str, str]], decontaminator: Decontaminator) -> dict:
    """The drop-log keys of a contaminated conversation: the matching turn's excerpt and the prompt it matched."""
    from openchat_hf.data.droplog import excerpt

    return {
        "excerpt": excerpt(messages[match.turn]["content"]),
        "rule": match.rule,
        "matched_id": match.prompt_id,
        "matched_excerpt": excerpt(prompt_text(decontaminator, match.prompt_id)),
        "turn": match.turn,
        "score": match.score,
    }
