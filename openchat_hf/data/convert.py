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


def convert_batch(
    batch: dict[str, list], *, template: Any, max_length: int, overflow: str, with_text: bool = True
) -> pa.Table:
    """``datasets.map(batched=True)`` function: ``messages`` -> ids, supervise mask, length, drop reason (+ text).

    Returns an Arrow table (built by Arrow's C++ converters), which ``datasets`` writes as is instead of checking and
    casting every token id in Python.
    """
    chats = template.tokenize_batch(batch["messages"], max_length=max_length if overflow == "truncate" else None)
    lengths = [len(chat.input_ids) for chat in chats]
    reasons = [_drop_reason(length, chat.supervise_mask, max_length) for length, chat in zip(lengths, chats)]
    texts = [template.render(m).text if with_text else "" for m in batch["messages"]]
    columns = {
        "input_ids": [chat.input_ids for chat in chats],
        "supervise_mask": [chat.supervise_mask for chat in chats],
        "length": lengths,
        "truncated": [chat.truncated for chat in chats],
        "neutralized": [chat.num_neutralized for chat in chats],
        "reason": reasons,
        "text": texts,
    }
    return pa.table(columns, schema=converted_schema())
