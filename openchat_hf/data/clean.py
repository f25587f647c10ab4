"""Clean one raw record: roles, HTML -> Markdown, malformed turns, blocked words; and the dedup content hash.

Each function is pure (one record in, a result out) so the pipeline can run it with ``datasets.map(num_proc=N)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import xxhash

from openchat_hf.data.errors import DataPipelineError
from openchat_hf.data.html_to_markdown import to_markdown

# OpenChat v1 (ochat/data/clean_sharegpt.py) blocked exactly this word, case-insensitively.
DEFAULT_BLOCKED_WORDS: tuple[str, ...] = ("openai",)

# Drop reasons of the clean step.
TOO_SHORT = "too_short"
WRONG_ROLES = "wrong_roles"
PARSE_ERROR = "parse_error"
EMPTY_TURN = "empty_turn"
BLOCKED_WORDS = "blocked_words"
DUPLICATE = "duplicate"
CLEAN_REASONS = (TOO_SHORT, WRONG_ROLES, PARSE_ERROR, EMPTY_TURN, BLOCKED_WORDS)

ROLE_MAP = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "assistant": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "system": "system",
}


def read_blocked_words(path: str | Path) -> list[str]:
    """A blocked-words file: one word or phrase per line; blank lines and ``#`` comments are ignored."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataPipelineError(f"Cannot read the blocked-words file {path}: {err}. Pass a UTF-8 text file.") from err
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


@dataclass(frozen=True)
class BlockedWords:
    """Case-insensitive whole-word matcher of blocked words / phrases (see :func:`blocked_words_pattern`).

    ``search`` first scans with the plain alternation: ``re`` can't use its fast literal scan on a pattern that starts
    with a lookbehind, and almost no text contains a blocked word, so this pre-check makes the common case ~2.5x cheaper.
    A whole-word match is always also a match of the plain alternation, so the result is that of ``pattern`` alone.
    """

    pattern: re.Pattern
    prefilter: re.Pattern

    def search(self, text: str) -> re.Match | None:
        return self.pattern.search(text) if self.prefilter.search(text) else None


def blocked_words_pattern(words: Iterable[str]) -> BlockedWords | None:
    """A case-insensitive matcher of any of ``words`` as whole words (not inside a longer word)."""
    words = sorted({w.strip() for w in words if w.strip()}, key=lambda w: (-len(w), w))
    if not words:
        return None
    alternation = "(?:" + "|".join(re.escape(w) for w in words) + ")"
    return BlockedWords(
        pattern=re.compile(r"(?<!\w)" + alternation + r"(?!\w)", re.IGNORECASE),
        prefilter=re.compile(alternation, re.IGNORECASE),
    )


def content_hash(messages: Sequence[dict[str, str]]) -> str:
    """A stable hash of a conversation's roles and contents (xxh3-128 hex; the same in every process and run)."""
    h = xxhash.xxh3_128()
    for m in messages:
        h.update(m["role"].encode())
        h.update(b"\x1f")
        h.update(m["content"].encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return h.hexdigest()


def normalize_turns(turns: Sequence[dict[str, str]], min_turns: int = 2) -> tuple[list[dict[str, str]], str]:
    """Map roles and trim a leading non-user and a trailing user turn (as OpenChat v1); ``(messages, reason)``."""
    messages = []
    for turn in turns:
        role = ROLE_MAP.get(str(turn["from"]).strip().lower())
        if role is None:
            return [], WRONG_ROLES
        messages.append({"role": role, "content": turn["value"]})
    system = []
    if messages and messages[0]["role"] == "system":
        system, messages = messages[:1], messages[1:]
    if len(messages) < min_turns:
        return [], TOO_SHORT
    if messages[0]["role"] != "user":
        messages = messages[1:]
    if len(messages) < min_turns:
        return [], TOO_SHORT
    if messages[-1]["role"] == "user":
        messages = messages[:-1]
    if len(messages) < min_turns:
        return [], TOO_SHORT
    for i, m in enumerate(messages):
        if m["role"] != ("user" if i % 2 == 0 else "assistant"):
            return [], WRONG_ROLES
    return system + messages, ""


def clean_conversation(
    turns: Sequence[dict[str, str]],
    *,
    already_clean: bool = False,
    blocked: BlockedWords | None = None,
    min_turns: int = 2,
) -> tuple[list[dict[str, str]], str]:
    """Clean one conversation: ``(messages, "")`` when kept, ``([], reason)`` when dropped."""
    messages, reason = normalize_turns(turns, min_turns)
    if reason:
        return [], reason
    out = []
    for m in messages:
        try:
            content = m["content"] if already_clean else to_markdown(m["content"])
        except Exception:  # noqa: BLE001 - any converter failure is a counted drop, never a crash
            return [], PARSE_ERROR
        if not content.strip() and m["role"] != "system":
            return [], EMPTY_TURN
        if blocked is not None and blocked.search(content):
            return [], BLOCKED_WORDS
        out.append({"role": m["role"], "content": content})
    return out, ""


def clean_batch(batch: dict[str, list], *, blocked_words: Sequence[str], min_turns: int = 2) -> dict[str, list]:
    """``datasets.map(batched=True)`` function: raw records -> ``messages``, ``reason``, ``hash``."""
    blocked = _pattern_cache(tuple(blocked_words))
    messages_out, reasons, hashes = [], [], []
    for turns, clean, error in zip(batch["turns"], batch["clean"], batch["error"]):
        if error:
            messages, reason = [], error
        else:
            messages, reason = clean_conversation(turns, already_clean=clean, blocked=blocked, min_turns=min_turns)
        messages_out.append(messages)
        reasons.append(reason)
        hashes.append(content_hash(messages) if not reason else "")
    return {"messages": messages_out, "reason": reasons, "hash": hashes}


_PATTERNS: dict[tuple[str, ...], BlockedWords | None] = {}


def _pattern_cache(words: tuple[str, ...]) -> BlockedWords | None:
    if words not in _PATTERNS:
        _PATTERNS[words] = blocked_words_pattern(words)
    return _PATTERNS[words]
