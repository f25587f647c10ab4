"""``export_checkpoint``: a checkpoint that TGI 3.x and vLLM serve with the exact training template.

What changes against a transformers 5 checkpoint (see docs/modeling.md):

* the chat template is written three times: ``chat_template.jinja`` (the training template, with
  ``{% generation %}`` markers; transformers 5 and vLLM read it first), and the marker-free form of the same template
  inline in ``tokenizer_config.json`` and in ``chat_template.json`` (TGI reads only those, and its minijinja engine
  rejects ``{% generation %}``);
* ``generation_config.json`` has ``eos_token_id`` as a list that includes the EOT id (TGI stops on it only then);
* ``tokenizer_config.json`` names ``PreTrainedTokenizerFast`` (instead of ``TokenizersBackend``, which 4.x cannot
  load) with ``added_tokens_decoder`` and the special tokens, so 4.5x and 5.x both load ``tokenizer.json`` as is;
* ``config.json`` has top-level ``rope_theta`` / ``rope_scaling`` beside ``rope_parameters`` and ``torch_dtype``;
* weights are safetensors.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from openchat_hf.folder_info import model_type_of, read_folder_info, recorded_model_type, write_folder_info
from openchat_hf.model_types import ModelType
from openchat_hf.modeling._io import atomic_dir, check_output_dir
from openchat_hf.modeling.chat_templates import check_template_text, serving_template, write_template_copies
from openchat_hf.modeling.context import legacy_rope_fields
from openchat_hf.modeling.errors import ModelingError
from openchat_hf.modeling.hub import push_folder
from openchat_hf.modeling.merge import merge_adapter
from openchat_hf.modeling.tokenizer_files import V5_ONLY_TOKENIZER_KEYS, legacy_tokenizer_config
from openchat_hf.templates import TemplateError, eot_token_id

logger = logging.getLogger(__name__)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelingError(f"Cannot read {path}: {err}") from err


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _copy_weights(ckpt: Path, tmp: Path) -> list[str]:
    """Copy safetensors weights (and their index); convert other formats by loading and saving the model."""
    files = sorted(ckpt.glob("*.safetensors"))
    if files:
        for path in [*files, *ckpt.glob("*.safetensors.index.json")]:
            shutil.copy2(path, tmp / path.name)
        return [p.name for p in files]
    from transformers import AutoModelForCausalLM

    logger.info("No safetensors in %s: loading the model to convert its weights", ckpt)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(ckpt), dtype="auto")
    except (OSError, ValueError) as err:
        raise ModelingError(f"Cannot load the weights of {ckpt}: {err}".splitlines()[0]) from err
    model.save_pretrained(tmp)
    (tmp / "config.json").unlink(missing_ok=True)
    (tmp / "generation_config.json").unlink(missing_ok=True)
    return [p.name for p in tmp.glob("*.safetensors")]


def _export_config(ckpt: Path, model_type: ModelType) -> dict[str, Any]:
    config = _read_json(ckpt / "config.json")
    config["openchat_model_type"] = model_type.name
    config.update(legacy_rope_fields(config))
    if "dtype" in config and "torch_dtype" not in config:
        config["torch_dtype"] = config["dtype"]
    return config


def _export_generation_config(ckpt: Path, config: dict[str, Any], tokenizer: Any, eot_id: int) -> dict[str, Any]:
    path = ckpt / "generation_config.json"
    generation = _read_json(path) if path.exists() else {}
    eos = generation.get("eos_token_id", config.get("eos_token_id"))
    eos = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    generation["eos_token_id"] = list(
        dict.fromkeys(i for i in [eot_id, *eos, tokenizer.eos_token_id] if i is not None)
    )
    for key in ("bos_token_id", "pad_token_id"):
        value = getattr(tokenizer, key, None)
        if generation.get(key) is None and value is not None:
            generation[key] = value
    return generation


def export_checkpoint(
    ckpt: str | Path,
    out: str | Path,
    push_to: str | None = None,
    *,
    model_type: ModelType | str | None = None,
    overwrite: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload OpenChat checkpoint (openchat-hf export)",
) -> Path:
    """Write a serving-ready copy of the checkpoint ``ckpt`` to ``out`` (and upload it to ``push_to`` on the Hub).

    The model type is the one the checkpoint records (:func:`openchat_hf.folder_info.model_type_of`; ``model_type``
    must agree with it, or name it for a folder without a record). The checkpoint must already have the EOT token
    (patched or trained by openchat-hf). A LoRA adapter folder (``adapter_config.json``) is merged into its base model
    first. Returns ``out``.
    """
    ckpt = Path(ckpt)
    if (ckpt / "adapter_config.json").is_file():
        name = model_type_of(ckpt, model_type).name if model_type or recorded_model_type(ckpt) else None
        out = check_output_dir(out, overwrite)
        with tempfile.TemporaryDirectory(prefix=".merged-", dir=out.parent if out.parent.exists() else None) as tmp:
            merged = merge_adapter(ckpt, Path(tmp), name)
            return export_checkpoint(
                merged,
                out,
                push_to,
                model_type=model_type,
                overwrite=overwrite,
                token=token,
                endpoint=endpoint,
                private=private,
                commit_message=commit_message,
            )
    return _export_full(ckpt, out, push_to, model_type, overwrite, token, endpoint, private, commit_message)


def _export_full(
    ckpt: Path,
    out: str | Path,
    push_to: str | None,
    model_type: ModelType | str | None,
    overwrite: bool,
    token: str | None,
    endpoint: str | None,
    private: bool | None,
    commit_message: str,
) -> Path:
    from openchat_hf.tokenizer_loading import TokenizerLoadError, load_tokenizer

    if not (ckpt / "config.json").is_file():
        raise ModelingError(f"{ckpt} is not a checkpoint folder (no config.json); give a patched or trained model.")
    mt = model_type_of(ckpt, model_type)
    out = check_output_dir(out, overwrite)
    if out.resolve() == ckpt.resolve():
        raise ModelingError("The export folder must differ from the checkpoint folder.")
    try:
        tokenizer = load_tokenizer(ckpt, mt)
    except TokenizerLoadError as err:
        raise ModelingError(f"Cannot load the tokenizer of {ckpt}: {err.reason}") from err
    try:
        eot_id = eot_token_id(tokenizer, mt)
    except TemplateError as err:
        raise ModelingError(f"{err} Run `openchat-hf patch` on the base model first.") from err
    if not getattr(tokenizer, "is_fast", False):
        raise ModelingError(f"{ckpt} has no fast tokenizer (tokenizer.json); TGI needs one.")
    _, plain_template = serving_template(tokenizer.chat_template, mt, tokenizer)
    check_template_text(plain_template, mt, tokenizer)

    with atomic_dir(out) as tmp:
        weights = _copy_weights(ckpt, tmp)
        config = _export_config(ckpt, mt)
        _write_json(tmp / "config.json", config)
        _write_json(tmp / "generation_config.json", _export_generation_config(ckpt, config, tokenizer, eot_id))
        tokenizer.save_pretrained(tmp)
        tokenizer_config = _read_json(tmp / "tokenizer_config.json")
        for key in V5_ONLY_TOKENIZER_KEYS:
            tokenizer_config.pop(key, None)
        tokenizer_config.update(legacy_tokenizer_config(tokenizer, plain_template, mt.eot_token))
        _write_json(tmp / "tokenizer_config.json", tokenizer_config)
        specials = {
            k: tokenizer_config[k]
            for k in ("bos_token", "eos_token", "unk_token", "pad_token")
            if k in tokenizer_config
        }
        _write_json(tmp / "special_tokens_map.json", {**specials, "additional_special_tokens": [mt.eot_token]})
        write_template_copies(tmp, tokenizer, mt)
        write_folder_info(tmp, **{**read_folder_info(ckpt), "model_type": mt.name, "kind": "export"})
        if read_folder_info(ckpt).get("tokenization") == "segment":  # no Jinja template can match its ids
            from openchat_hf.templates import SEGMENT_JINJA_NOTE

            logger.warning(SEGMENT_JINJA_NOTE)
            (tmp / "SEGMENT_TOKENIZATION.md").write_text(f"# Segment tokenization\n\n{SEGMENT_JINJA_NOTE}\n")
        for path in ckpt.iterdir():
            if path.is_file() and path.suffix == ".md" and not (tmp / path.name).exists():
                shutil.copy2(path, tmp / path.name)
    logger.info("Exported %s (%s, EOT id %d, weights %s) -> %s", ckpt, mt.name, eot_id, ", ".join(weights), out)
    if push_to:
        push_folder(out, push_to, token=token, endpoint=endpoint, private=private, commit_message=commit_message)
    return out
