"""Read scores out of judge reviews, tolerating the formats real judges produce."""

from __future__ import annotations

import json
import re

from openchat_hf.evaluation.errors import EvaluationError

NUMBER = r"\d+(?:\.\d+)?"
MIN_SCORE, MAX_SCORE = 0.0, 10.0

_OUT_OF_TEN = re.compile(rf"({NUMBER})\s*(?:/|out\s+of)\s*10(?!\d|\.\d)", re.IGNORECASE)
_LABEL = re.compile(r"assistant\s*[12]\b", re.IGNORECASE)
_FINAL_LINE = re.compile(rf"^\W*scores?\b[^\d\[]*\[?\s*({NUMBER})\s*(?:,|\s|and|;|/)\s*({NUMBER})\s*\]?\W*$", re.I)
_LABELLED = re.compile(
    r"assistant\s*([12])\b(?:'s)?\s*(?:(?:score|rating|receives|gets|scores|earns|deserves|is|of|a|an|overall|final)"
    rf"\s+)*[:=-]?\s*({NUMBER})(?:\s*(?:/|out\s+of)\s*10|\s*points?\b)?"
    # not a number inside text ("2 times"), nor a list item ("Assistant 1: 1. Create a schedule")
    r"(?!\d|\.\d|[ \t]*[A-Za-z]|\.[ \t]*(?!assistant)[A-Za-z(])",
    re.IGNORECASE,
)
_FILLER = re.compile(r"\b(?:scores?|ratings?|and|final|overall)\b|[^\w.\s]", re.IGNORECASE)
# A Python tuple "(1, 5)" (FastChat's 2023 math prompt asks for one) on a line that talks of scores, or alone on its
# line: never the coordinates "(2, -2) and (10, 4)" of a worked solution.
_TUPLE_PAIR = re.compile(rf"\(\s*({NUMBER})\s*,\s*({NUMBER})\s*\)")
_JSON_PAIR = re.compile(rf"\[\s*({NUMBER})\s*,\s*({NUMBER})\s*\]")
_RATING = re.compile(rf"\[\[\s*({NUMBER})\s*(?:/\s*10\s*)?\]\]")
_RATING_FALLBACK = re.compile(rf"\brating\b\W{{0,5}}\[?\s*({NUMBER})\s*\]?(?:\s*(?:/|out\s+of)\s*10)?", re.IGNORECASE)


class ScoreParseError(EvaluationError):
    """A review whose scores cannot be read; recorded with its raw text, never scored as 0."""


def _check(scores: list[float], text: str) -> list[float]:
    if not all(MIN_SCORE <= s <= MAX_SCORE for s in scores):
        raise ScoreParseError(f"scores {scores} are outside {MIN_SCORE:g}-{MAX_SCORE:g}: {text[-200:]!r}")
    return scores


def _line_pair(line: str) -> list[float] | None:
    """The two scores of a line holding nothing else (labels, "/10", "Scores", "and", punctuation allowed)."""
    line = _FILLER.sub(" ", _OUT_OF_TEN.sub(r"\1", _LABEL.sub(" ", line)))
    tokens = line.split()
    if len(tokens) == 2 and all(re.fullmatch(NUMBER, t) for t in tokens):
        return [float(t) for t in tokens]
    return None


def parse_pair_scores(text: str) -> list[float]:
    """``[score of Assistant 1, score of Assistant 2]`` from a pairwise review.

    Tried in order: our fixed final line (``Scores: 8 7``); labelled scores (``Score of Assistant 1: 8``,
    ``Assistant 2: 7/10``, last mention wins; a list item ``Assistant 1: 1. Create...`` is no score); a Python tuple
    ``(1, 5)`` on a line about scores or alone on its line (last one); a JSON list ``[8, 7]`` (last one); the last non-empty line, then the
    first, when it holds the two scores and nothing else (``8 7``, ``8.5, 7``, ``8/10 and 7/10``). Raises
    ``ScoreParseError`` otherwise.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise ScoreParseError("empty review")
    match = _FINAL_LINE.match(lines[-1].replace("*", ""))
    if match:
        return _check([float(match.group(1)), float(match.group(2))], text)
    labelled: dict[str, float] = {}
    for m in _LABELLED.finditer(text.replace("*", "")):
        labelled[m.group(1)] = float(m.group(2))
    if set(labelled) == {"1", "2"}:
        return _check([labelled["1"], labelled["2"]], text)
    for line in reversed(lines):
        tuples = _TUPLE_PAIR.findall(line)
        if tuples and ("score" in line.lower() or _TUPLE_PAIR.sub("", line).strip(" .*`") == ""):
            return _check([float(tuples[-1][0]), float(tuples[-1][1])], text)
    pairs = _JSON_PAIR.findall(text)
    if pairs:
        try:
            return _check([float(x) for x in json.loads(f"[{pairs[-1][0]}, {pairs[-1][1]}]")], text)
        except ValueError:
            pass
    for line in (lines[-1], lines[0]):
        pair = _line_pair(line)
        if pair is not None:
            return _check(pair, text)
    raise ScoreParseError(f"no pair of scores found in the review (last line: {lines[-1][:200]!r})")


def parse_rating(text: str) -> float:
    """A single-answer rating: the last ``[[8]]`` / ``[[8.5]]``, else ``Rating: 8`` / ``8/10`` on the last line."""
    found = _RATING.findall(text)
    if found:
        return _check([float(found[-1])], text)[0]
    found = _RATING_FALLBACK.findall(text)
    if found:
        return _check([float(found[-1])], text)[0]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines:
        numbers = _OUT_OF_TEN.findall(lines[-1])
        if len(numbers) == 1:
            return _check([float(numbers[0])], text)[0]
    raise ScoreParseError(f"no [[rating]] found in the review (end: {text[-200:]!r})")


def _json_score(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ScoreParseError(f"{value!r} is not a score")
    try:
        return float(value)
    except ValueError as err:
        raise ScoreParseError(f"{value!r} is not a score") from err


def read_pair_json(obj: dict) -> list[float]:
    """``[score_1, score_2]`` of a JSON verdict ``{"evaluation", "score_1", "score_2"}``."""
    return _check([_json_score(obj["score_1"]), _json_score(obj["score_2"])], json.dumps(obj)[-200:])


def read_rating_json(obj: dict) -> float:
    """The rating of a JSON verdict ``{"explanation", "rating"}``."""
    return _check([_json_score(obj["rating"])], json.dumps(obj)[-200:])[0]
