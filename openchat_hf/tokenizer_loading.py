"""Load a tokenizer and check it before any work, with one-line errors that name the real cause.

Every command that takes a tokenizer (``data run``, ``patch``, ``serve``, ``export``) loads it through
:func:`load_tokenizer` first, so a problem shows before reading data or loading weights:

* the Python packages the folder's files need: a ``tokenizer.json`` needs nothing beyond ``tokenizers``; a
  SentencePiece ``tokenizer.model`` alone (the LLaMA / Mistral layout) needs ``sentencepiece`` **and** ``protobuf``
  to be converted into a fast tokenizer (without protobuf, transformers' own error wrongly names ``tiktoken``); a
  tiktoken BPE file (``tokenizer.model`` as text, or ``*.tiktoken``) needs ``tiktoken``;
* a fast tokenizer (supervise masks need character offsets);
* with a model type, its EOT token as a *special* token. A tokenizer that has ``<|end_of_turn|>`` as a plain token
  (a vocabulary entry, or an added token not marked special) would split it or let content produce it; such a
  token is re-registered as special under the same id, with a warning, so the data, the patched model and the server
  all agree on it. With ``require_eot=True`` (checkpoints: serve, export) a missing EOT is an error.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from openchat_hf.errors import OpenChatError

logger = logging.getLogger(__name__)


class TokenizerLoadError(OpenChatError):
    """A tokenizer that cannot be loaded or is unfit for a model type: ``Cannot load a tokenizer from PATH: REASON``.

    ``reason`` holds the part after the path, for callers that word their own prefix.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"Cannot load a tokenizer from {path}: {reason}")
        self.path, self.reason = str(path), reason


def _missing(*modules: str) -> list[str]:
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return missing


_PACKAGE_OF = {"google.protobuf": "protobuf", "sentencepiece": "sentencepiece", "tiktoken": "tiktoken"}


def _is_sentencepiece_model(path: Path) -> bool:
    """A SentencePiece ``ModelProto`` (binary protobuf, field 1 first) rather than a tiktoken text file."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    return bool(head) and head[0] == 0x0A  # a tiktoken file starts with a base64 character


def required_packages(folder: str | Path) -> list[str]:
    """The Python modules a local tokenizer folder needs beyond ``tokenizers`` (empty for a ``tokenizer.json``)."""
    folder = Path(folder)
    if (folder / "tokenizer.json").is_file():
        return []
    if list(folder.glob("*.tiktoken")):
        return ["tiktoken"]
    model = folder / "tokenizer.model"
    if model.is_file():
        return ["sentencepiece", "google.protobuf"] if _is_sentencepiece_model(model) else ["tiktoken"]
    return []


def check_dependencies(folder: str | Path) -> None:
    """Raise :class:`TokenizerLoadError` naming the packages a local tokenizer folder needs but cannot import."""
    needed = required_packages(folder)
    missing = [_PACKAGE_OF.get(m, m) for m in _missing(*needed)]
    if missing:
        kind = "tiktoken BPE file" if "tiktoken" in needed else "SentencePiece tokenizer.model without tokenizer.json"
        raise TokenizerLoadError(
            folder,
            f"it is a {kind}, which needs {' and '.join(missing)}: pip install {' '.join(missing)} "
            "(or save the tokenizer with a tokenizer.json)",
        )


def ensure_special_eot(tokenizer: Any, model_type: Any, *, require: bool = False, path: Any = "") -> int | None:
    """Make the model type's EOT a special token of ``tokenizer`` when it is a plain one; return its id.

    Returns ``None`` when the tokenizer has no EOT yet (a base tokenizer: ``setup_tokenizer`` adds it), unless
    ``require`` is set, which makes that an error.
    """
    from tokenizers import AddedToken

    from openchat_hf.model_types import get_model_type

    mt = get_model_type(model_type)
    vocab = tokenizer.get_vocab()
    if mt.eot_token not in vocab:
        if require:
            raise TokenizerLoadError(
                path or tokenizer.name_or_path,
                f"it has no {mt.eot_token!r} token, which model type {mt.name!r} ends every turn with: "
                "pass a folder written by `openchat-hf patch` or training, or the right --model-type",
            )
        return None
    token_id = vocab[mt.eot_token]
    added = tokenizer.added_tokens_decoder.get(token_id)
    if added is not None and added.special:
        return token_id
    logger.warning(
        "The tokenizer has %s (id %d) as a plain token%s: content could produce it and it would not be treated as "
        "the end of a turn. Re-registering it as a special token with the same id.",
        mt.eot_token,
        token_id,
        " (an added token not marked special)" if added is not None else " of its vocabulary",
    )
    tokenizer.add_tokens([AddedToken(mt.eot_token, special=True, normalized=False)], special_tokens=True)
    if (
        tokenizer.convert_tokens_to_ids(mt.eot_token) != token_id
        or not tokenizer.added_tokens_decoder[token_id].special
    ):
        raise TokenizerLoadError(
            path or tokenizer.name_or_path,
            f"{mt.eot_token!r} (id {token_id}) is a plain token and cannot be made special",
        )
    return token_id


_GENERIC_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")


def _generic_tokenizer_folder(folder: Path) -> bool:
    """Whether ``AutoTokenizer`` would load ``folder`` as the generic ``TokenizersBackend``: a tokenizer-only folder
    (no ``config.json`` whose model type could pick another class) with a ``tokenizer.json``, no ``auto_map`` and a
    generic ``tokenizer_class``. Such a folder is loaded without importing ``AutoTokenizer``, whose module imports
    torch (~3 s of CPU in a process that needs no torch, e.g. ``data run``)."""
    import json

    if not (folder / "tokenizer.json").is_file() or (folder / "config.json").exists():
        return False
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "auto_map" not in config and config.get("tokenizer_class") in _GENERIC_CLASSES


def load_tokenizer(
    path: str | Path,
    model_type: Any = None,
    *,
    require_eot: bool = False,
    local_files_only: bool = False,
) -> Any:
    """Load the fast tokenizer at ``path`` and check it (see the module docstring); raise :class:`TokenizerLoadError`.

    ``path`` is a local folder, or a Hub id already in the local cache. With ``model_type``, its EOT is made special
    when it is a plain token (with a warning); ``require_eot=True`` also requires it to be present.
    """
    local = Path(path).is_dir()
    if local:
        check_dependencies(path)
    elif local_files_only or Path(path).exists():
        raise TokenizerLoadError(path, "no such folder")
    try:
        if local and _generic_tokenizer_folder(Path(path)):
            from transformers import TokenizersBackend as loader
        else:
            from transformers import AutoTokenizer as loader
        tokenizer = loader.from_pretrained(str(path), local_files_only=local_files_only)
    except Exception as err:  # noqa: BLE001 - transformers raises many types here
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TokenizerLoadError(path, f"{type(err).__name__}: {message}") from err
    if not getattr(tokenizer, "is_fast", False):
        raise TokenizerLoadError(
            path, "it is not a fast tokenizer; supervise masks need character offsets (save it with a tokenizer.json)"
        )
    if model_type is not None:
        ensure_special_eot(tokenizer, model_type, require=require_eot, path=path)
    return tokenizer
