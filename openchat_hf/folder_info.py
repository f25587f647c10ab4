"""``openchat_hf.json``: what every folder openchat-hf writes says about itself, and the one model-type lookup.

Every folder we write -- a patched model, a training checkpoint, an export, the data pipeline's ``OUT/<model_type>``
-- carries ``openchat_hf.json``::

    {"model_type": "openchat", "tokenization": "joint", "kind": "checkpoint", "openchat_hf_version": "0.1.0"}

:func:`model_type_of` is the only way any part of openchat-hf (patch, training, export, serving, data) finds the
model type of a folder: the folder's record (``openchat_hf.json``, else ``config.json``'s ``openchat_model_type``
written by older versions) decides; an explicit name is accepted when it agrees with the record, or -- for a folder
without a record, such as a base model -- when its ``family`` matches the model's architecture. Anything else is a
one-line error that names the right value.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from openchat_hf.model_types import ModelType, ModelTypeError, get_model_type, list_model_types

FOLDER_INFO_FILE = "openchat_hf.json"
TOKENIZATIONS = ("joint", "segment")
KINDS = ("patched", "checkpoint", "export", "data")


class FolderInfoError(ModelTypeError):
    """An unreadable ``openchat_hf.json``, a model type that disagrees with a folder, or one that cannot be found."""


def _version() -> str:
    from openchat_hf import __version__

    return __version__


def read_folder_info(folder: str | Path) -> dict[str, Any]:
    """The folder's ``openchat_hf.json`` as a dict (``{}`` when the folder or the file does not exist)."""
    path = Path(folder) / FOLDER_INFO_FILE
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FolderInfoError(f"Cannot read {path}: {err}; delete it or rewrite the folder.") from None
    if not isinstance(info, dict):
        raise FolderInfoError(f"{path} must hold a JSON object, got {type(info).__name__}.")
    return info


def write_folder_info(folder: str | Path, **fields: Any) -> Path:
    """Write ``fields`` into the folder's ``openchat_hf.json`` (merged over what it already holds); return its path.

    ``model_type`` (a name or a :class:`ModelType`) must be registered and ``tokenization`` must be ``"joint"`` or
    ``"segment"`` (default ``"joint"`` when a model type is written). A field given as ``None`` is removed.
    """
    folder = Path(folder)
    info = read_folder_info(folder)
    if isinstance(fields.get("model_type"), ModelType):
        fields["model_type"] = fields["model_type"].name
    if fields.get("model_type") is not None:
        get_model_type(fields["model_type"])  # unknown names raise with the known ones
        fields.setdefault("tokenization", info.get("tokenization", "joint"))
    tokenization = fields.get("tokenization")
    if tokenization is not None and tokenization not in TOKENIZATIONS:
        raise FolderInfoError(f"tokenization must be one of {', '.join(TOKENIZATIONS)}, got {tokenization!r}.")
    info.update(fields)
    info["openchat_hf_version"] = _version()
    info = {k: v for k, v in info.items() if v is not None}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FOLDER_INFO_FILE
    tmp = path.with_name(f".{FOLDER_INFO_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def template_tokenization(template: Any) -> str:
    """The tokenization mode of a :class:`~openchat_hf.templates.ChatTemplate` (``"joint"`` unless it says)."""
    return getattr(template, "tokenization", None) or "joint"


def _config_json(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return config if isinstance(config, dict) else {}


def _config_get(config: Any, key: str) -> Any:
    return config.get(key) if isinstance(config, dict) else getattr(config, key, None)


def recorded_model_type(folder: str | Path, config: Any = None) -> str | None:
    """The model type a folder records: ``openchat_hf.json``, else ``openchat_model_type`` of its config.

    ``config`` (a ``PretrainedConfig`` or a dict) stands in for ``config.json`` when the model was not loaded from a
    local folder (a Hub id).
    """
    name = read_folder_info(folder).get("model_type")
    if not name:
        name = _config_get(config if config is not None else _config_json(Path(folder)), "openchat_model_type")
    return str(name) if name else None


def model_types_for_architecture(architecture: str | None) -> list[str]:
    """Registered model types whose ``family`` is this architecture (``config.model_type``: ``llama``, ...)."""
    return [n for n in list_model_types() if architecture and get_model_type(n).family == architecture]


def resolve_model_type(
    recorded: str | None,
    explicit: str | ModelType | None = None,
    *,
    architecture: str | None = None,
    source: str = "the folder",
) -> ModelType:
    """The rule behind :func:`model_type_of`, for callers that hold a record and architecture rather than a folder.

    ``recorded`` is what the folder says, ``explicit`` what the user asked for, ``architecture`` the model's
    ``config.model_type`` (``None`` when there is no model, e.g. a data folder).
    """
    explicit_name = explicit.name if isinstance(explicit, ModelType) else explicit
    if recorded:
        if explicit_name and explicit_name != recorded:
            raise FolderInfoError(
                f"{source} was written for model type {recorded!r}, not {explicit_name!r}; "
                f"pass --model-type {recorded} (or leave it out)."
            )
        return get_model_type(explicit if explicit is not None else recorded)
    if explicit is None:
        candidates = model_types_for_architecture(architecture)
        hint = f" (for a {architecture} model: {', '.join(candidates)})" if candidates else ""
        raise FolderInfoError(
            f"{source} does not record its model type ({FOLDER_INFO_FILE}); pass --model-type{hint}. "
            f"Known: {', '.join(list_model_types())}."
        )
    model_type = get_model_type(explicit)
    if architecture and model_type.family != architecture:
        candidates = model_types_for_architecture(architecture)
        fix = (
            f"use --model-type {' or '.join(candidates)}"
            if candidates
            else f"register a model type with family={architecture!r}"
        )
        raise FolderInfoError(
            f"{source} is a {architecture} model but model type {model_type.name!r} is for {model_type.family} "
            f"models; {fix}."
        )
    return model_type


def model_type_of(folder: str | Path, explicit: str | ModelType | None = None, *, config: Any = None) -> ModelType:
    """The model type of ``folder``: the one lookup every part of openchat-hf uses.

    * the folder records a model type (``openchat_hf.json``, or ``config.json``'s ``openchat_model_type``): that one;
      ``explicit`` must agree with it, else a :class:`FolderInfoError` naming the recorded value;
    * no record (a base model): ``explicit``, whose ``family`` must match the model's architecture
      (``config.json``'s ``model_type``), else an error naming the registered types that fit;
    * neither: an error asking for ``--model-type`` with the types that fit the architecture.

    ``config`` (a ``PretrainedConfig`` or dict) replaces reading ``config.json`` when ``folder`` is not local.
    """
    source, folder = str(folder), Path(folder)
    config = config if config is not None else _config_json(folder)
    return resolve_model_type(
        recorded_model_type(folder, config),
        explicit,
        architecture=_config_get(config, "model_type"),
        source=source,
    )
