"""Registry of model types: the conversation format, context length and EOT initialisation of each published model.

A model type is everything that differs between OpenChat's models; the template code in :mod:`openchat_hf.templates`
turns it into text, token ids, supervise masks and a Jinja chat template. Register your own with
:func:`register_model_type`::

    from openchat_hf.model_types import ModelType, register_model_type

    register_model_type(ModelType(name="openchat_mistral", family="mistral", max_length=8192))

Every command (and ``recipes/sft.py``) sees model types registered outside openchat-hf in three ways: a package's
entry point in the group ``openchat_hf.model_types`` (pointing at a :class:`ModelType`, a list of them, or a module
that registers its own), the ``openchat-hf --model-type-module MODULE`` option, or the environment variable
``OPENCHAT_HF_MODEL_TYPE_MODULES`` (comma-separated module names or ``.py`` files; the option sets it, so
subprocesses such as ``accelerate launch`` see the same types).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from openchat_hf.errors import OpenChatError

ENTRY_POINT_GROUP = "openchat_hf.model_types"
MODULES_ENV = "OPENCHAT_HF_MODEL_TYPE_MODULES"

EOT_TOKEN = "<|end_of_turn|>"

ROLES = ("system", "user", "assistant")


class ModelTypeError(OpenChatError, KeyError):
    """An unknown or invalid model type."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ModelType:
    """One conversation format and its model-side settings.

    Attributes:
        name: registry key, also the prefix of the legacy output files (``NAME.train.json``).
        family: base model family (``llama``, ``gpt_bigcode``, ``mistral``, ...).
        max_length: training / serving context in tokens.
        user_prefix, assistant_prefix, system_prefix: text put before each turn's content.
        eot_token: the end-of-turn token closing every turn.
        eot_init: how the new EOT embedding rows are initialised: ``"mean"`` of the existing rows (LLaMA) or
            ``"normal"`` with std ``eot_init_std`` (StarCoder).
        add_bos: whether a conversation starts with the tokenizer's BOS token.
        context_extension: RoPE method used when the base model's context is shorter than ``max_length``
            (``"extrapolate"``, ``"linear"``, ``"dynamic"``, ``"yarn"``), or ``None`` to leave it alone.
    """

    name: str
    family: str
    max_length: int
    user_prefix: str = "Human: "
    assistant_prefix: str = "Assistant: "
    system_prefix: str = "System: "
    eot_token: str = EOT_TOKEN
    eot_init: str = "mean"
    eot_init_std: float = 0.02
    add_bos: bool = True
    context_extension: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ModelTypeError(f"Model type name {self.name!r} must be non-empty letters, digits, '_' or '-'.")
        if self.max_length <= 0:
            raise ModelTypeError(f"Model type {self.name!r}: max_length must be positive, got {self.max_length}.")
        if self.eot_init not in ("mean", "normal"):
            raise ModelTypeError(
                f"Model type {self.name!r}: eot_init must be 'mean' or 'normal', got {self.eot_init!r}."
            )
        if not self.eot_token:
            raise ModelTypeError(f"Model type {self.name!r}: eot_token must not be empty.")

    def prefix(self, role: str) -> str:
        """The text put before a turn of ``role``."""
        return {"system": self.system_prefix, "user": self.user_prefix, "assistant": self.assistant_prefix}[role]

    @property
    def generation_prefix(self) -> str:
        """What a generation prompt ends with: the assistant prefix without its trailing spaces.

        Tokenizers of the LLaMA and GPT-2 families merge a space with the word after it (``"▁Hi"``), so in training
        the space after ``Assistant:`` belongs to the first answer token. Ending the prompt with a bare space token
        would show the model a sequence it never saw in training; ending it before the space lets it generate
        ``" Hi"`` exactly as trained. :func:`openchat_hf.templates.ChatTemplate.strip_completion` removes that space.
        """
        return self.assistant_prefix.rstrip(" ")


_REGISTRY: dict[str, ModelType] = {}


def register_model_type(model_type: ModelType, *, overwrite: bool = False) -> ModelType:
    """Add a model type to the registry (``overwrite=True`` to replace an existing one)."""
    if model_type.name in _REGISTRY and not overwrite:
        raise ModelTypeError(
            f"Model type {model_type.name!r} is already registered; pass overwrite=True to replace it."
        )
    _REGISTRY[model_type.name] = model_type
    return model_type


def get_model_type(name: str | ModelType) -> ModelType:
    """Look a model type up by name (a :class:`ModelType` is returned as is)."""
    if isinstance(name, ModelType):
        return name
    load_model_type_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelTypeError(f"Unknown model type {name!r}. Known: {', '.join(sorted(_REGISTRY))}.") from None


def list_model_types() -> list[str]:
    """Names of all registered model types (built-in, entry points and ``OPENCHAT_HF_MODEL_TYPE_MODULES``)."""
    load_model_type_plugins()
    return sorted(_REGISTRY)


_LOADED: set[str] = set()


def _register_loaded(obj: object, where: str) -> None:
    """Register what an entry point gave: a ModelType, a list of them, a callable returning them, or a module."""
    if callable(obj) and not isinstance(obj, ModelType | type):
        obj = obj()
    items = obj if isinstance(obj, list | tuple) else [obj]
    for item in items:
        if isinstance(item, ModelType):
            if _REGISTRY.get(item.name) != item:
                register_model_type(item)  # a different type under a taken name is an error
        elif item is not None and not hasattr(item, "__file__"):  # a module registers its types when imported
            raise ModelTypeError(f"{where} gave {type(item).__name__}, not a ModelType (or a list of them).")


def import_model_type_module(spec: str) -> None:
    """Import a module (dotted name, or a ``.py`` file) that registers model types; once per spec."""
    spec = spec.strip()
    if not spec or spec in _LOADED:
        return
    _LOADED.add(spec)
    try:
        if spec.endswith(".py") or os.sep in spec:
            path = Path(spec).resolve()
            module_spec = importlib.util.spec_from_file_location(f"openchat_hf_model_types_{path.stem}", path)
            if module_spec is None or module_spec.loader is None or not path.is_file():
                raise FileNotFoundError(f"no such file {path}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_spec.name] = module
            module_spec.loader.exec_module(module)
        else:
            importlib.import_module(spec)
    except ModelTypeError:
        raise
    except Exception as err:
        _LOADED.discard(spec)
        raise ModelTypeError(
            f"Cannot import the model type module {spec!r}: {type(err).__name__}: {err}".splitlines()[0]
        ) from None


def load_model_type_plugins() -> None:
    """Register the model types of installed entry points and of ``OPENCHAT_HF_MODEL_TYPE_MODULES`` (idempotent)."""
    from importlib.metadata import entry_points

    if "entry-points" not in _LOADED:
        _LOADED.add("entry-points")
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            where = f"Entry point {entry_point.name} = {entry_point.value} ({ENTRY_POINT_GROUP})"
            try:
                obj = entry_point.load()
            except Exception as err:
                raise ModelTypeError(
                    f"{where} cannot be loaded: {type(err).__name__}: {err}".splitlines()[0]
                ) from None
            _register_loaded(obj, where)
    for spec in os.environ.get(MODULES_ENV, "").split(","):
        import_model_type_module(spec)


def add_model_type_modules(specs: list[str] | tuple[str, ...]) -> None:
    """Import these model type modules now and add them to ``OPENCHAT_HF_MODEL_TYPE_MODULES`` for subprocesses."""
    for spec in specs:
        import_model_type_module(spec)
    current = [s for s in os.environ.get(MODULES_ENV, "").split(",") if s.strip()]
    os.environ[MODULES_ENV] = ",".join(dict.fromkeys([*current, *(s.strip() for s in specs if s.strip())]))


def parse_model_types(spec: str | list[str]) -> list[ModelType]:
    """``"openchat,opencoder"`` or a list of names -> model types (unknown names raise with the known ones)."""
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    if not names:
        raise ModelTypeError("No model type given. Known: " + ", ".join(list_model_types()) + ".")
    return [get_model_type(n) for n in names]


OPENCHAT = register_model_type(ModelType(name="openchat", family="llama", max_length=2048))
OPENCHAT_8192 = register_model_type(
    replace(OPENCHAT, name="openchat_8192", max_length=8192, context_extension="extrapolate")
)
OPENCODER = register_model_type(
    ModelType(
        name="opencoder",
        family="gpt_bigcode",
        max_length=8192,
        user_prefix="User:",
        assistant_prefix="Assistant:",
        system_prefix="System:",
        eot_init="normal",
        add_bos=False,
    )
)
# Llama-3 (8K context): OpenChat's "Human: " / "Assistant: " turns, with Llama-3's own end-of-turn token as EOT.
# `<|eot_id|>` is already a special token of every Llama-3 tokenizer (id 128009) and the EOS of Llama-3-Instruct, so
# patching adds no vocabulary row (its embedding is kept as Meta trained it, and stays untouched by `patch`), the
# exported model stops where Llama-3 tooling expects, and TGI / vLLM need no new token. The BOS is
# `<|begin_of_text|>` (the template writes it; Llama-3's tokenizer itself adds none).
OPENCHAT_LLAMA3 = register_model_type(
    ModelType(name="openchat_llama3", family="llama", max_length=8192, eot_token="<|eot_id|>")
)
