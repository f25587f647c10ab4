"""Merge a LoRA adapter folder into its base model (``openchat-hf export`` of an adapter checkpoint)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from openchat_hf.modeling.errors import ModelingError

logger = logging.getLogger(__name__)


def merge_adapter(ckpt: Path, dest: Path, model_type: str | None = None) -> Path:
    """Merge a peft (LoRA) adapter folder into its base model and save the full model + tokenizer to ``dest``.

    peft resizes the base's embeddings to the adapter folder's tokenizer (EOT added on the fly during training), and
    ``modules_to_save`` copies (embeddings, LM head) replace the base's.
    """
    from transformers import AutoTokenizer

    try:
        from peft import AutoPeftModelForCausalLM
    except ImportError as err:  # pragma: no cover - peft is in the train extra
        raise ModelingError("Exporting a LoRA adapter needs peft: pip install 'openchat-hf[train]'.") from err
    try:
        model = AutoPeftModelForCausalLM.from_pretrained(str(ckpt), dtype="auto")
        tokenizer = AutoTokenizer.from_pretrained(str(ckpt))
    except (OSError, ValueError) as err:
        raise ModelingError(
            f"Cannot load the adapter {ckpt} with its base model: {err}".splitlines()[0]
            + " (the base_model_name_or_path of adapter_config.json must be loadable here)."
        ) from err
    merged = model.merge_and_unload()
    if model_type is not None:
        merged.config.openchat_model_type = model_type
    merged.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    for card in ckpt.glob("*.md"):  # the training run's model card
        shutil.copy2(card, dest / card.name)
    logger.info("Merged the adapter %s into its base model", ckpt)
    return dest
