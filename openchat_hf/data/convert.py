"""Convert clean conversations to training data for one model type: template + EOT, tokenize, truncate or drop.

Everything goes through :class:`openchat_hf.templates.ChatTemplate` (set up by
:func:`openchat_hf.templates.setup_tokenizer`), so the tokens are exactly what the chat template gives at serving time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from openchat_hf.data.errors import DataPipelineError

logger = logging.getLogger(__name__)

OVERFLOW_CHOICES = ("truncate", "drop")
# Drop reasons of the convert step.
TOO_LONG = "too_long"
NO_SUPERVISED_TOKENS = "no_supervised_tokens"
CONVERT_REASONS = (TOO_LONG, NO_SUPERVISED_TOKENS)


def parse_tokenizer_spec(spec: str | dict[str, str] | None, model_types: Sequence[str]) -> dict[str, str]:
    """``PATH`` (one tokenizer for every model type) or ``TYPE=PATH,TYPE=PATH`` -> ``{model_type: path}``."""
    if spec is None or spec == "":
        return {}
    if isinstance(spec, dict):
        mapping = dict(spec)
    elif "=" in spec:
        mapping = {}
        for part in spec.split(","):
            name, sep, path = part.partition("=")
            if not sep or not name.strip() or not path.strip():
                raise DataPipelineError(f"Bad --tokenizer entry {part!r}: use PATH or TYPE=PATH,TYPE=PATH.")
            mapping[name.strip()] = path.strip()
    else:
        mapping = dict.fromkeys(model_types, spec)
    missing = [m for m in model_types if m not in mapping]
    if missing:
        raise DataPipelineError(f"No tokenizer given for model type(s) {', '.join(missing)}: add TYPE=PATH entries.")
    return {m: mapping[m] for m in model_types}


def load_tokenizer(path: str | Path, model_type: Any = None) -> Any:
    """A checked fast tokenizer from a local folder (:mod:`openchat_hf.tokenizer_loading`; never downloads)."""
    from openchat_hf.tokenizer_loading import TokenizerLoadError
    from openchat_hf.tokenizer_loading import load_tokenizer as load_checked

    path = Path(path)
    if not path.is_dir():
        raise DataPipelineError(
            f"Tokenizer folder {path} does not exist: pass --tokenizer with a local folder holding tokenizer.json "
            "(e.g. a base model saved with save_pretrained), or omit it to write only the clean dataset."
        )
    try:
        return load_checked(path, model_type, local_files_only=True)
    except TokenizerLoadError as err:
        raise DataPipelineError(str(err)) from err


def split_indices(n: int, eval_ratio: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train / eval split of ``n`` rows: ``ceil(n * eval_ratio)`` eval rows (at least one train row)."""
    if not 0 <= eval_ratio < 1:
        raise DataPipelineError(f"eval_ratio must be in [0, 1), got {eval_ratio}.")
    n_eval = min(math.ceil(n * eval_ratio), max(n - 1, 0)) if eval_ratio > 0 else 0
    perm = np.random.default_rng(seed).permutation(n)
    return sorted(perm[n_eval:].tolist()), sorted(perm[:n_eval].tolist())


def _row_starts(lengths) -> np.ndarray:
    """Row offsets into flat arrays: ``[0, l0, l0 + l1, ...]``."""
    starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    return starts


def converted_schema() -> pa.Schema:
    """Arrow schema of :func:`convert_batch`'s output (ids as int32, mask as int8)."""
    return pa.schema(
        {
            "input_ids": pa.list_(pa.int32()),
            "supervise_mask": pa.list_(pa.int8()),
            "length": pa.int32(),
            "truncated": pa.bool_(),
            "neutralized": pa.int32(),
            "reason": pa.string(),
            "text": pa.string(),
        }
    )


# A conversation is cut, before tokenizing, to the characters that can make max_length + CUT_MARGIN_TOKENS tokens.
CUT_MARGIN_TOKENS = 64
_MAX_TOKEN_CHARS: dict[int, int] = {}


def max_token_chars(tokenizer: Any) -> int:
    """The most characters one token of ``tokenizer`` can stand for (its longest vocabulary entry; cached)."""
    key = id(tokenizer)
    if key not in _MAX_TOKEN_CHARS:
        vocab = tokenizer.backend_tokenizer.get_vocab(with_added_tokens=True)
        _MAX_TOKEN_CHARS[key] = max(map(len, vocab), default=1)
    return _MAX_TOKEN_CHARS[key]


def cut_messages(messages: Sequence[dict[str, str]], max_chars: int) -> tuple[list[dict[str, str]], bool]:
    """Cut a conversation's contents to ``max_chars`` characters in all (later contents become empty; the roles
    stay); ``(messages, cut)``."""
    if sum(len(m["content"]) for m in messages) <= max_chars:
        return list(messages), False
    out, left = [], max_chars
    for m in messages:
        out.append({**m, "content": m["content"][: max(left, 0)]})
        left -= len(m["content"])
    return out, True


def convert_batch(
    batch: dict[str, list], *, template: Any, max_length: int, overflow: str, with_text: bool = True
) -> pa.Table:
    """``datasets.map(batched=True)`` function: ``messages`` -> ids, supervise mask, length, drop reason (+ text).

    The work is bounded by the context, not by the input: a conversation longer than ``(max_length +
    CUT_MARGIN_TOKENS) * max_token_chars`` characters is cut to that before it is tokenized (it cannot have fewer
    tokens than that, so the first ``max_length`` tokens are those of the whole text; a cut that gives fewer than
    ``max_length + CUT_MARGIN_TOKENS`` tokens is tokenized again uncut). Special-token strings are counted in what
    is tokenized.

    The template gives flat NumPy arrays (:meth:`~openchat_hf.templates.ChatTemplate.tokenize_arrays`), and the
    result is an Arrow table built from them without a Python object per token, which ``datasets`` writes as is.
    """
    budget = (max_length + CUT_MARGIN_TOKENS) * max_token_chars(template.tokenizer)
    conversations, cut = zip(*(cut_messages(m, budget) for m in batch["messages"])) if batch["messages"] else ((), ())
    tokenized = template.tokenize_arrays(list(conversations))
    ids, mask, starts = tokenized.ids, tokenized.supervise_mask, tokenized.starts
    texts, neutralized = list(tokenized.texts), list(tokenized.num_neutralized)
    redo = [i for i, c in enumerate(cut) if c and starts[i + 1] - starts[i] < max_length + CUT_MARGIN_TOKENS]
    if redo:  # a cut conversation gave too few tokens: tokenize it whole
        logger.debug("%d cut conversation(s) gave too few tokens; tokenizing them whole.", len(redo))
        whole = template.tokenize_arrays([batch["messages"][i] for i in redo])
        rows = [(ids[starts[i] : starts[i + 1]], mask[starts[i] : starts[i + 1]]) for i in range(len(cut))]
        for j, i in enumerate(redo):
            rows[i] = (
                whole.ids[whole.starts[j] : whole.starts[j + 1]],
                whole.supervise_mask[whole.starts[j] : whole.starts[j + 1]],
            )
            texts[i], neutralized[i] = whole.texts[j], whole.num_neutralized[j]
        ids = np.concatenate([r[0] for r in rows])
        mask = np.concatenate([r[1] for r in rows])
        starts = _row_starts([len(r[0]) for r in rows])
    full = np.diff(starts)
    over = full > max_length
    if overflow == "truncate" and over.any():  # keep each row's first max_length tokens
        position = np.arange(len(ids)) - np.repeat(starts[:-1], full)
        keep = position < max_length
        ids, mask = ids[keep], mask[keep]
        lengths = np.minimum(full, max_length)
        starts = _row_starts(lengths)
        truncated = over
    else:
        lengths, truncated = full, np.zeros(len(full), dtype=bool)
    supervised = np.add.reduceat(mask.astype(np.int64), starts[:-1]) if len(mask) else np.zeros(len(full), np.int64)
    supervised = np.where(lengths > 0, supervised, 0)  # reduceat gives the next element for an empty row
    reasons = np.where(lengths > max_length, TOO_LONG, np.where(supervised > 0, "", NO_SUPERVISED_TOKENS))
    offsets = pa.array(starts.astype(np.int32))
    columns = {
        "input_ids": pa.ListArray.from_arrays(offsets, pa.array(ids, type=pa.int32())),
        "supervise_mask": pa.ListArray.from_arrays(offsets, pa.array(mask, type=pa.int8())),
        "length": pa.array(lengths.astype(np.int32)),
        "truncated": pa.array(truncated),
        "neutralized": pa.array(neutralized, type=pa.int32()),
        "reason": pa.array(reasons.tolist(), type=pa.string()),
        "text": pa.array(texts if with_text else [""] * len(texts), type=pa.string()),
    }
    return pa.table(columns, schema=converted_schema())
