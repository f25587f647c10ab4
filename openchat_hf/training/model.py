"""Load a base or patched model for training, and make a saved checkpoint satisfy the checkpoint contract."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from openchat_hf.folder_info import model_type_of, write_folder_info
from openchat_hf.model_types import get_model_type
from openchat_hf.templates import eot_token_id, setup_tokenizer
from openchat_hf.training.errors import TrainingError

logger = logging.getLogger(__name__)


def ensure_eot(model: Any, tokenizer: Any, model_type: str) -> int:
    """Give ``model`` and ``tokenizer`` the EOT token, pad token and chat template; return the EOT id.

    A base model without EOT is patched on the fly with ``openchat_hf.modeling.patch_loaded_model`` (EOT rows
    initialised as the model type says; RoPE context extended when the model type needs a longer context). A
    tokenizer that already has it only gets its chat template, pad token and generation EOS list refreshed.
    """
    from openchat_hf.modeling import patch_loaded_model, set_generation_eos

    mt = get_model_type(model_type)
    if mt.eot_token not in tokenizer.get_vocab():
        logger.info("The tokenizer has no %s: patching the model on the fly", mt.eot_token)
        patch_loaded_model(model, tokenizer, mt)
    setup_tokenizer(tokenizer, mt)
    eot = eot_token_id(tokenizer, mt)
    rows = model.get_input_embeddings().num_embeddings  # not weight.shape: ZeRO-3 partitions the weight
    if rows < len(tokenizer):
        raise TrainingError(
            f"The model has {rows} embedding rows but the tokenizer has {len(tokenizer)} tokens; patch the model "
            "with `openchat-hf patch`."
        )
    model.config.openchat_model_type = mt.name
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    set_generation_eos(model, tokenizer, eot)
    return eot


def local_path_or_id(name_or_path: str) -> str:
    """An existing local folder as an absolute path (recorded in ``config._name_or_path`` and a LoRA adapter's
    ``base_model_name_or_path``, so merge / export work from any directory); a Hub id unchanged."""
    local = Path(name_or_path).expanduser()
    return str(local.resolve()) if local.is_dir() else name_or_path


def load_model_and_tokenizer(
    model_name_or_path: str,
    model_type: str | None = None,
    *,
    dtype: str | None = "auto",
    attn_implementation: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    **model_kwargs: Any,
) -> tuple[Any, Any, str]:
    """``(model, tokenizer, model_type)`` ready for training (EOT present, template set, contract config fields).

    ``model_kwargs`` go to ``from_pretrained`` (``quantization_config``, ``device_map`` for QLoRA).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from openchat_hf.tokenizer_loading import check_dependencies, ensure_special_eot

    if not model_name_or_path:
        raise TrainingError("No model given: set model_name_or_path in the recipe or with --model_name_or_path.")
    model_name_or_path = local_path_or_id(model_name_or_path)
    if Path(model_name_or_path).is_dir():
        check_dependencies(model_name_or_path)  # a missing package named right, before the weights load
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model_name_or_path, revision=revision, trust_remote_code=trust_remote_code
        )
        kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code, **model_kwargs}
        if dtype not in (None, "auto"):
            kwargs["dtype"] = getattr(torch, dtype)
        else:
            kwargs["dtype"] = "auto"
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        model = AutoModelForCausalLM.from_pretrained(model_name_or_path, **kwargs)
    except OSError as err:
        raise TrainingError(f"Could not load model {model_name_or_path!r}: {err}") from err
    name = model_type_of(model_name_or_path, model_type, config=model.config).name
    ensure_special_eot(tokenizer, name)  # a plain EOT token becomes special (same id), with a warning
    ensure_eot(model, tokenizer, name)
    return model, tokenizer, name


def finalize_checkpoint(
    output_dir: str | Path, tokenizer: Any, model_type: str | None = None, tokenization: str | None = None
) -> None:
    """Write the template copies and ``openchat_hf.json`` of a saved checkpoint (the checkpoint contract).

    ``tokenization`` is the training data's mode (its ``openchat_hf.json``), so serving builds prompts the same way.
    """
    from openchat_hf.modeling.chat_templates import write_template_copies

    if not (Path(output_dir) / "tokenizer_config.json").exists():
        return
    write_template_copies(output_dir, tokenizer, model_type)
    if model_type:
        extra = {"tokenization": tokenization} if tokenization else {}
        write_folder_info(output_dir, model_type=model_type, kind="checkpoint", **extra)
