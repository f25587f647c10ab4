"""``patch_model``: turn a base model into an OpenChat-ready checkpoint (EOT token, chat template, context)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from openchat_hf.folder_info import model_type_of, write_folder_info
from openchat_hf.model_types import ModelType, get_model_type
from openchat_hf.modeling._io import atomic_dir, check_output_dir
from openchat_hf.modeling.chat_templates import write_template_copies
from openchat_hf.modeling.context import CONTEXT_METHODS, context_length, extend_context, has_rope
from openchat_hf.modeling.eot import EOT_INITS, add_eot_token
from openchat_hf.modeling.errors import ModelingError

logger = logging.getLogger(__name__)


def load_base(base: str | Path, dtype: str = "auto", model_type: Any = None) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer from a local folder (or a cached Hub id), as ModelingError on failure.

    The tokenizer is loaded and checked first (:mod:`openchat_hf.tokenizer_loading`), before the weights.
    """
    from transformers import AutoModelForCausalLM

    from openchat_hf.tokenizer_loading import TokenizerLoadError, load_tokenizer

    try:
        tokenizer = load_tokenizer(base, model_type)
    except TokenizerLoadError as err:
        raise ModelingError(f"Cannot load a causal LM and tokenizer from {base}: {err.reason}") from err
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base), dtype=dtype)
    except (OSError, ValueError) as err:
        raise ModelingError(
            f"Cannot load a causal LM and tokenizer from {base}: {err.__class__.__name__}: {err}".splitlines()[0]
            + " (give a folder with config.json, weights and tokenizer files)."
        ) from err
    return model, tokenizer


def patch_loaded_model(
    model: Any,
    tokenizer: Any,
    model_type: ModelType | str,
    eot_init: str | None = None,
    context_method: str | None = None,
    max_length: int | None = None,
) -> int:
    """Patch an in-memory model + tokenizer in place (see :func:`patch_model`); return the EOT id."""
    mt = get_model_type(model_type)
    if eot_init is not None and eot_init not in EOT_INITS:
        raise ModelingError(f"Unknown EOT init {eot_init!r}; use one of {', '.join(EOT_INITS)}.")
    if context_method is not None and context_method not in CONTEXT_METHODS:
        raise ModelingError(f"Unknown context method {context_method!r}; use one of {', '.join(CONTEXT_METHODS)}.")
    target = max_length or mt.max_length
    method = context_method or mt.context_extension
    current = context_length(model.config)
    if current is not None and current < target:
        if method is None:
            logger.warning(
                "%s has a %d-token context but model type %s uses %d; pass a context method to extend it",
                type(model).__name__,
                current,
                mt.name,
                target,
            )
        elif has_rope(model.config) or context_method is not None:
            extend_context(model, target, method)
        else:
            logger.warning("%s has no RoPE; its %d-token context cannot be extended", type(model).__name__, current)
    eot_id = add_eot_token(model, tokenizer, mt, init=eot_init)
    tokenizer.model_max_length = target
    return eot_id


def patch_model(
    base: str | Path,
    out: str | Path,
    model_type: ModelType | str | None,
    eot_init: str | None = None,
    context_method: str | None = None,
    *,
    max_length: int | None = None,
    dtype: str = "auto",
    overwrite: bool = False,
) -> Path:
    """Load ``base``, add the EOT token, extend the context if needed, and save an OpenChat checkpoint to ``out``.

    The saved checkpoint has the tokenizer with EOT and the model type's chat template, ``config.openchat_model_type``
    and ``openchat_eot_init``, and ``generation_config.eos_token_id`` as a list including EOT. The context is extended
    (with ``context_method``, default the model type's ``context_extension``) when the base is shorter than
    ``max_length`` (default the model type's ``max_length``). Weights keep their dtype (``dtype="auto"``).

    ``model_type`` must fit the base (:func:`openchat_hf.folder_info.model_type_of`): its ``family`` must be the
    base's architecture, and a base that already records a model type only accepts that one (or ``None``).
    """
    local = Path(base).is_dir()
    mt = model_type_of(base, model_type) if local else None  # refuse a wrong type before loading the weights
    out = check_output_dir(out, overwrite)
    model, tokenizer = load_base(base, dtype=dtype, model_type=mt)
    mt = mt or model_type_of(base, model_type, config=model.config)
    eot_id = patch_loaded_model(model, tokenizer, mt, eot_init, context_method, max_length)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_template_copies(tmp, tokenizer, mt)
        write_folder_info(tmp, model_type=mt, kind="patched")
    logger.info("Patched %s as %s (EOT id %d) -> %s", base, mt.name, eot_id, out)
    return out
