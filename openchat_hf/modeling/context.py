"""Extend a RoPE model's context (OpenChat-8192): ``max_position_embeddings`` + transformers 5 ``rope_parameters``.

Methods:

* ``extrapolate`` (OpenChat-8192's choice): plain RoPE, only ``max_position_embeddings`` grows; positions beyond the
  pre-training length use the same frequencies and fine-tuning teaches the model to use them.
* ``linear``: position interpolation, every frequency divided by ``factor = max_length / original``.
* ``dynamic``: dynamic NTK, the RoPE base grows with the sequence length. Transformers (and vLLM/TGI) read
  ``max_position_embeddings`` as the *pre-training* length for this method, so it stays at the original value and
  the usable context is ``factor * max_position_embeddings``.
* ``yarn``: YaRN (NTK-by-parts + attention scaling) with ``original_max_position_embeddings``.
"""

from __future__ import annotations

import logging
from typing import Any

from openchat_hf.modeling.errors import ModelingError

logger = logging.getLogger(__name__)

CONTEXT_METHODS = ("extrapolate", "linear", "dynamic", "yarn")


def has_rope(config: Any) -> bool:
    """Whether ``config`` describes a model with rotary position embeddings (not learned absolute positions)."""
    return bool(getattr(config, "rope_parameters", None)) and hasattr(config, "max_position_embeddings")


def _rope_of(config: Any) -> dict:
    """The RoPE parameters (``rope_parameters``, else the legacy ``rope_scaling``; the full-attention entry of
    per-layer-type parameters)."""
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if not isinstance(rope, dict):
        return {}
    if rope and all(isinstance(v, dict) for v in rope.values()):
        rope = rope.get("full_attention") or next(iter(rope.values()))
    return rope


def context_length(config: Any) -> int | None:
    """The longest sequence the model is configured for: the one function every part (serving included) uses.

    ``max_position_embeddings`` (or ``n_positions``, ...), except that RoPE scaling may extend it:
    ``factor * max_position_embeddings`` for dynamic NTK (which keeps the pre-training length there), and
    ``factor * original_max_position_embeddings`` for YaRN / LongRoPE configs that do the same.
    """
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            rope = _rope_of(config)
            kind = rope.get("rope_type") or rope.get("type")
            factor = rope.get("factor")
            if not isinstance(factor, (int, float)) or factor <= 1:
                return value
            if kind == "dynamic":
                return int(value * factor)
            if kind in ("yarn", "longrope"):
                original = rope.get("original_max_position_embeddings") or value
                return max(value, int(original * factor))
            return value
    return None


def _rebuild_rotary_embeddings(model: Any) -> int:
    """Recreate the model's rotary-embedding modules from its (changed) config; they cache ``inv_freq`` at init."""
    import torch

    config = model.config
    replaced = 0
    for name, module in list(model.named_modules()):
        if not type(module).__name__.endswith("RotaryEmbedding") or not hasattr(module, "inv_freq"):
            continue
        device = module.inv_freq.device
        with torch.device(device):
            new = type(module)(config=getattr(module, "config", config))
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
        replaced += 1
    return replaced


def extend_context(model_or_config: Any, max_length: int = 8192, method: str = "extrapolate") -> Any:
    """Configure a RoPE model (or its config) for ``max_length`` tokens with ``method``; return the config.

    Given a model, its rotary-embedding modules are rebuilt so the change applies at once. The config records
    ``openchat_context_extension = {"method", "original_max_position_embeddings", "max_length"}``. A model whose
    context is already ``>= max_length`` is left unchanged.
    """
    if method not in CONTEXT_METHODS:
        raise ModelingError(f"Unknown context method {method!r}; use one of {', '.join(CONTEXT_METHODS)}.")
    is_model = hasattr(model_or_config, "config") and hasattr(model_or_config, "named_modules")
    config = model_or_config.config if is_model else model_or_config
    if not has_rope(config):
        raise ModelingError(
            f"{getattr(config, 'model_type', type(config).__name__)} models have no rotary position embeddings "
            "(learned absolute positions cannot be extended); drop --context-method or use a RoPE model."
        )
    if max_length <= 0:
        raise ModelingError(f"max_length must be positive, got {max_length}.")
    rope = dict(config.rope_parameters)
    if "rope_type" not in rope and "rope_theta" not in rope:
        raise ModelingError("Per-layer RoPE parameters are not supported by extend_context.")
    original = config.max_position_embeddings
    if max_length <= (context_length(config) or original):
        logger.info("Context is already %d >= %d tokens; RoPE left unchanged", context_length(config), max_length)
        return config
    if rope.get("rope_type", "default") != "default":
        raise ModelingError(
            f"The model already uses rope_type={rope['rope_type']!r}; extend_context starts from plain RoPE."
        )

    factor = max_length / original
    new_rope: dict[str, Any] = {"rope_type": "default", "rope_theta": rope.get("rope_theta", 10000.0)}
    if "partial_rotary_factor" in rope:
        new_rope["partial_rotary_factor"] = rope["partial_rotary_factor"]
    max_position_embeddings = max_length
    if method == "linear":
        new_rope.update(rope_type="linear", factor=factor)
    elif method == "dynamic":
        new_rope.update(rope_type="dynamic", factor=factor)
        max_position_embeddings = original
    elif method == "yarn":
        new_rope.update(rope_type="yarn", factor=factor, original_max_position_embeddings=original)
    config.rope_parameters = new_rope
    config.max_position_embeddings = max_position_embeddings
    if hasattr(config, "validate_rope"):
        config.validate_rope()
    config.openchat_context_extension = {
        "method": method,
        "original_max_position_embeddings": original,
        "max_length": max_length,
    }
    if is_model:
        n = _rebuild_rotary_embeddings(model_or_config)
        logger.info("Rebuilt %d rotary embedding module(s)", n)
    logger.info("Extended context %d -> %d tokens with %s RoPE (%s)", original, max_length, method, new_rope)
    return config


def legacy_rope_fields(config_dict: dict[str, Any]) -> dict[str, Any]:
    """Top-level ``rope_theta`` / ``rope_scaling`` for transformers 4.x, TGI and vLLM, from ``rope_parameters``."""
    rope = config_dict.get("rope_parameters")
    if not isinstance(rope, dict) or ("rope_type" not in rope and "rope_theta" not in rope):
        return {}
    fields: dict[str, Any] = {"rope_theta": rope.get("rope_theta", 10000.0)}
    rope_type = rope.get("rope_type", "default")
    if rope_type == "default":
        fields["rope_scaling"] = None
    else:
        scaling = {k: v for k, v in rope.items() if k not in ("rope_theta", "rope_type", "partial_rotary_factor")}
        fields["rope_scaling"] = {"rope_type": rope_type, "type": rope_type, **scaling}
    if "partial_rotary_factor" in rope:
        fields["partial_rotary_factor"] = rope["partial_rotary_factor"]
    return fields
