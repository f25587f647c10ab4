"""``export_checkpoint``: a checkpoint that TGI 3.x and vLLM serve with the exact training template.

What changes against a transformers 5 checkpoint (see DESIGN.md section 9):

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
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from openchat_hf.model_types import ModelType, get_model_type
from openchat_hf.modeling._io import atomic_dir, check_output_dir
from openchat_hf.modeling.context import extend_context, legacy_rope_fields
from openchat_hf.modeling.errors import ModelingError
from openchat_hf.templates import ChatTemplate, TemplateError, eot_token_id

logger = logging.getLogger(__name__)

# The class name both transformers 4.5x and 5.x load from tokenizer.json as is. Family classes are not safe: in
# transformers 5, ``LlamaTokenizerFast`` maps to a class that rebuilds the normalizer / pre-tokenizer (Metaspace) and
# tokenizes differently after special tokens; in 4.x it rebuilds the post-processor from ``add_bos_token``.
LEGACY_TOKENIZER_CLASS = "PreTrainedTokenizerFast"
# Keys transformers 5 writes into tokenizer_config.json that mean nothing (or something else) to 4.x.
_V5_ONLY_TOKENIZER_KEYS = ("backend", "is_local", "local_files_only", "extra_special_tokens")
_GENERATION_TAG = re.compile(r"\{%(-?)\s*(end)?generation\s*(-?)%\}")


def serving_template(training_template: str | None, model_type: ModelType, tokenizer: Any) -> tuple[str, str]:
    """(training template, marker-free template rendering the same text) for a checkpoint's tokenizer.

    Our own template gives ``ChatTemplate.jinja(generation_markers=False)``; any other template keeps its text with
    each ``{% generation %}`` / ``{% endgeneration %}`` turned into ``{% if true %}`` / ``{% endif %}`` (same
    whitespace control, same output), so the served template is always the one the model was trained with.
    """
    ours = ChatTemplate(model_type, tokenizer)
    if training_template is None or training_template == ours.jinja():
        return ours.jinja(), ours.jinja(generation_markers=False)
    logger.warning("The checkpoint's chat template is not model type %s's; exporting it as is", model_type.name)
    plain = _GENERATION_TAG.sub(lambda m: f"{{%{m[1]} {'endif' if m[2] else 'if true'} {m[3]}%}}", training_template)
    return training_template, plain


def _probe_conversation() -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi <|end_of_turn|> there"},
        {"role": "assistant", "content": "Hello!\nHow can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ]


def check_template_text(template: str, model_type: ModelType, tokenizer: Any) -> None:
    """Render a probe conversation with plain Jinja and with :class:`ChatTemplate`; raise if the texts differ."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    messages = _probe_conversation()
    expected = ChatTemplate(model_type, tokenizer).render(messages, add_generation_prompt=True).text
    got = env.from_string(template).render(messages=messages, add_generation_prompt=True, **_special_vars(tokenizer))
    if got != expected:
        raise ModelingError(
            "The checkpoint's chat template does not render model type "
            f"{model_type.name}'s text ({got[:80]!r} vs {expected[:80]!r}); pass the right --model-type."
        )


def _special_vars(tokenizer: Any) -> dict[str, Any]:
    return {"bos_token": tokenizer.bos_token or "", "eos_token": tokenizer.eos_token or ""}


def _token_entry(token: Any, special: bool) -> dict[str, Any]:
    return {
        "content": str(token.content),
        "lstrip": bool(token.lstrip),
        "normalized": bool(token.normalized),
        "rstrip": bool(token.rstrip),
        "single_word": bool(token.single_word),
        "special": bool(special),
    }


def legacy_tokenizer_config(tokenizer: Any, plain_template: str, eot: str) -> dict[str, Any]:
    """A ``tokenizer_config.json`` that transformers 4.5x (TGI, older vLLM) and 5.x load into the same tokenizer."""
    added = tokenizer._tokenizer.get_added_tokens_decoder()
    special_ids = set(tokenizer.all_special_ids) | {tokenizer.convert_tokens_to_ids(eot)}
    decoder = {
        str(i): _token_entry(tok, getattr(tok, "special", False) or i in special_ids)
        for i, tok in sorted(added.items())
    }
    config: dict[str, Any] = {
        "tokenizer_class": LEGACY_TOKENIZER_CLASS,
        "added_tokens_decoder": decoder,
        "bos_token": tokenizer.bos_token,
        "eos_token": tokenizer.eos_token,
        "unk_token": tokenizer.unk_token,
        "pad_token": tokenizer.pad_token,
        "additional_special_tokens": [eot],
        "model_max_length": int(tokenizer.model_max_length),
        "clean_up_tokenization_spaces": bool(getattr(tokenizer, "clean_up_tokenization_spaces", False)),
        "chat_template": plain_template,
    }
    # transformers 4.x rewrites a top-level pre-tokenizer whose add_prefix_space differs from this flag (default False).
    pre_tokenizer = json.loads(tokenizer._tokenizer.to_str()).get("pre_tokenizer") or {}
    if "add_prefix_space" in pre_tokenizer:
        config["add_prefix_space"] = bool(pre_tokenizer["add_prefix_space"])
    return {k: v for k, v in config.items() if v is not None}


def write_chat_templates(directory: str | Path, training_template: str, plain_template: str) -> None:
    """Write ``chat_template.jinja`` (training form) and the marker-free inline copies into a saved tokenizer."""
    directory = Path(directory)
    (directory / "chat_template.jinja").write_text(training_template, encoding="utf-8")
    (directory / "chat_template.json").write_text(
        json.dumps({"chat_template": plain_template}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    for key in ("is_local", "local_files_only"):  # load-time options transformers 5 saves; not tokenizer settings
        config.pop(key, None)
    config["chat_template"] = plain_template
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


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
    trained = _read_json(ckpt / "config.json") if (ckpt / "config.json").is_file() else {}  # saved by training
    extension = trained.get("openchat_context_extension")
    if extension:  # the base was patched on the fly (e.g. openchat_8192): extend the merged model the same way
        extend_context(merged, extension["max_length"], extension["method"])
    model_type = model_type or trained.get("openchat_model_type")
    if model_type is not None:
        merged.config.openchat_model_type = model_type
    merged.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    for card in ckpt.glob("*.md"):  # the training run's model card
        shutil.copy2(card, dest / card.name)
    logger.info("Merged the adapter %s into its base model", ckpt)
    return dest


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

    The model type comes from ``config.openchat_model_type`` (``model_type`` fills or overrides it). The checkpoint
    must already have the EOT token (patched or trained by openchat-hf). A LoRA adapter folder (``adapter_config.json``)
    is merged into its base model first. Returns ``out``.
    """
    ckpt = Path(ckpt)
    if (ckpt / "adapter_config.json").is_file():
        name = str(model_type.name if isinstance(model_type, ModelType) else model_type) if model_type else None
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
    from transformers import AutoTokenizer

    if not (ckpt / "config.json").is_file():
        raise ModelingError(f"{ckpt} is not a checkpoint folder (no config.json); give a patched or trained model.")
    raw_config = _read_json(ckpt / "config.json")
    name = model_type or raw_config.get("openchat_model_type")
    if name is None:
        raise ModelingError(f"{ckpt}/config.json has no openchat_model_type; pass --model-type.")
    mt = get_model_type(name)
    out = check_output_dir(out, overwrite)
    if out.resolve() == ckpt.resolve():
        raise ModelingError("The export folder must differ from the checkpoint folder.")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(ckpt))
    except (OSError, ValueError) as err:
        raise ModelingError(f"Cannot load the tokenizer of {ckpt}: {err}".splitlines()[0]) from err
    try:
        eot_id = eot_token_id(tokenizer, mt)
    except TemplateError as err:
        raise ModelingError(f"{err} Run `openchat-hf patch` on the base model first.") from err
    if not getattr(tokenizer, "is_fast", False):
        raise ModelingError(f"{ckpt} has no fast tokenizer (tokenizer.json); TGI needs one.")
    training_template, plain_template = serving_template(tokenizer.chat_template, mt, tokenizer)
    check_template_text(plain_template, mt, tokenizer)

    with atomic_dir(out) as tmp:
        weights = _copy_weights(ckpt, tmp)
        config = _export_config(ckpt, mt)
        _write_json(tmp / "config.json", config)
        _write_json(tmp / "generation_config.json", _export_generation_config(ckpt, config, tokenizer, eot_id))
        tokenizer.save_pretrained(tmp)
        tokenizer_config = _read_json(tmp / "tokenizer_config.json")
        for key in _V5_ONLY_TOKENIZER_KEYS:
            tokenizer_config.pop(key, None)
        tokenizer_config.update(legacy_tokenizer_config(tokenizer, plain_template, mt.eot_token))
        _write_json(tmp / "tokenizer_config.json", tokenizer_config)
        specials = {
            k: tokenizer_config[k]
            for k in ("bos_token", "eos_token", "unk_token", "pad_token")
            if k in tokenizer_config
        }
        _write_json(tmp / "special_tokens_map.json", {**specials, "additional_special_tokens": [mt.eot_token]})
        write_chat_templates(tmp, training_template, plain_template)
        for path in ckpt.iterdir():
            if path.is_file() and path.suffix == ".md" and not (tmp / path.name).exists():
                shutil.copy2(path, tmp / path.name)
    logger.info("Exported %s (%s, EOT id %d, weights %s) -> %s", ckpt, mt.name, eot_id, ", ".join(weights), out)
    if push_to:
        push_folder(out, push_to, token=token, endpoint=endpoint, private=private, commit_message=commit_message)
    return out


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    endpoint: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload OpenChat checkpoint (openchat-hf export)",
) -> str:
    """Create ``repo_id`` on the Hub if needed and upload ``folder``; return the commit URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    transport_errors: tuple[type[BaseException], ...] = (HfHubHTTPError, OSError)
    try:  # huggingface_hub 1.x+ talks HTTP through httpx2; its connection errors are not OSErrors
        import httpx2

        transport_errors += (httpx2.HTTPError,)
    except ImportError:  # pragma: no cover
        pass
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo_id, exist_ok=True, private=private)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message=commit_message)
    except transport_errors as err:
        raise ModelingError(
            f"Pushing to {repo_id} failed: {str(err).splitlines()[0]} (check the repo name and your token; "
            f"the exported folder {folder} is kept)."
        ) from err
    logger.info("Pushed %s to %s", folder, info.commit_url if hasattr(info, "commit_url") else repo_id)
    return str(getattr(info, "commit_url", info))
