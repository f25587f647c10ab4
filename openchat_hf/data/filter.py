"""Keep conversations by the model that wrote them (ShareGPT's ``model`` field; ``Model: GPT-4`` by default)."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_FILTER_MODELS: tuple[str, ...] = ("Model: GPT-4",)
MODEL_FILTERED = "model_filtered"
NO_MODEL_LABEL = "no_model_label"  # filtered out: the record has no ``model`` label at all


def keep_model(model: str, models: Sequence[str] | None) -> bool:
    """Whether a conversation from ``model`` is kept; ``models`` empty or ``None`` keeps everything."""
    if not models:
        return True
    return model.strip() in models


def filter_reason(model: str, models: Sequence[str] | None) -> str:
    """``""`` when a conversation from ``model`` is kept, else why not (:data:`MODEL_FILTERED` or
    :data:`NO_MODEL_LABEL`)."""
    if keep_model(model, models):
        return ""
    return MODEL_FILTERED if model.strip() else NO_MODEL_LABEL


FILTER_REASONS = (MODEL_FILTERED, NO_MODEL_LABEL)
