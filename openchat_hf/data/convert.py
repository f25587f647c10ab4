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
from openchat_hf.model_types import ModelType

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


def load_tokenizer(path: str | Path) -> Any:
    """A fast tokenizer from a local folder (clear errors for a missing or unusable path; never downloads)."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise DataPipelineError(
            f"Tokenizer folder {path} does not exist: pass --tokenizer with a local folder holding tokenizer.json "
            "(e.g. a base model saved with save_pretrained), or omit it to write only the clean dataset."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as err:  # noqa: BLE001 - transformers raises many types here
        raise DataPipelineError(f"Cannot load a tokenizer from {path}: {err}") from err
    if not getattr(tokenizer, "is_fast", False):
        raise DataPipelineError(f"The tokenizer in {path} is not a fast tokenizer; supervise masks need offsets.")
    return tokenizer


def split_indices(n: int, eval_ratio: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train / eval split of ``n`` rows: ``ceil(n * eval_ratio)`` eval rows (at least one train row)."""
    if not 0 <= eval_ratio < 1:
        raise DataPipelineError(f"eval_ratio must be in [0, 1), got {eval_ratio}.")
    n_eval = min(math.ceil(n * eval_ratio), max(n - 1, 0)) if eval_ratio > 0 else 0
    perm = np.random.default_rng(seed).permutation(n)
    return sorted(perm[n_eval:].tolist()), sorted(perm[:n_eval].tolist())


def _drop_reason(length: int, supervise_mask: list[int], max_length: int) -> str:
    if length > max_length:
        return TOO_LONG
    return "" if 1 in supervise_mask else NO_SUPERVISED_TOKENS


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

    Returns an Arrow table (built by Arrow's C++ converters), which ``datasets`` writes as is instead of checking and
    casting every token id in Python.
    """
    budget = (max_length + CUT_MARGIN_TOKENS) * max_token_chars(template.tokenizer)
    conversations, cut = zip(*(cut_messages(m, budget) for m in batch["messages"])) if batch["messages"] else ((), ())
    chats = template.tokenize_batch(list(conversations))
    conversations = list(conversations)
    for i in [i for i, c in enumerate(cut) if c and len(chats[i].input_ids) < max_length + CUT_MARGIN_TOKENS]:
        logger.debug("A cut conversation gave too few tokens; tokenizing it whole.")
        conversations[i] = batch["messages"][i]
        chats[i] = template.tokenize(conversations[i])
    ids, masks, lengths, truncated = [], [], [], []
    for chat in chats:
        over = len(chat.input_ids) > max_length
        keep = max_length if over and overflow == "truncate" else None
        ids.append(chat.input_ids[:keep])
        masks.append(chat.supervise_mask[:keep])
        lengths.append(len(ids[-1]))
        truncated.append(over and keep is not None)
    reasons = [_drop_reason(length, mask, max_length) for length, mask in zip(lengths, masks)]
    texts = [template.render(m).text if with_text else "" for m in conversations]
    columns = {
        "input_ids": ids,
        "supervise_mask": masks,
        "length": lengths,
        "truncated": truncated,
        "neutralized": [chat.num_neutralized for chat in chats],
        "reason": reasons,
        "text": texts,
    }
    return pa.table(columns, schema=converted_schema())


def model_type_summary(model_type: ModelType) -> dict[str, Any]:
    return {"family": model_type.family, "max_length": model_type.max_length}
