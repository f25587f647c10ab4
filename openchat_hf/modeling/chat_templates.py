"""The chat template copies a checkpoint folder carries, written by one function for every folder we write.

A folder saved by ``openchat-hf patch``, by training and by ``openchat-hf export`` holds the template three times:

* ``chat_template.jinja``: the training template, with ``{% generation %}`` markers (transformers 5 and vLLM read it
  first; ``apply_chat_template(..., return_assistant_tokens_mask=True)`` needs the markers);
* inline in ``tokenizer_config.json`` and in ``chat_template.json``: the marker-free form of the same template, which
  renders the same text. TGI reads only these, and its minijinja engine rejects ``{% generation %}``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from openchat_hf.model_types import ModelType, get_model_type
from openchat_hf.modeling.errors import ModelingError
from openchat_hf.templates import ChatTemplate, TemplateError

logger = logging.getLogger(__name__)

_GENERATION_TAG = re.compile(r"\{%(-?)\s*(end)?generation\s*(-?)%\}")


def strip_generation_markers(template: str) -> str:
    """``template`` with each ``{% generation %}`` / ``{% endgeneration %}`` turned into ``{% if true %}`` /
    ``{% endif %}`` (same whitespace control, so the same output)."""
    return _GENERATION_TAG.sub(lambda m: f"{{%{m[1]} {'endif' if m[2] else 'if true'} {m[3]}%}}", template)


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
    return training_template, strip_generation_markers(training_template)


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


def write_template_copies(directory: str | Path, tokenizer: Any, model_type: ModelType | str | None = None) -> str:
    """Write every template copy of a saved tokenizer folder from ``tokenizer.chat_template``; return the plain one.

    The one function patch, training saves and export use. With a ``model_type``, our own template's copies come from
    :meth:`ChatTemplate.jinja` (see :func:`serving_template`); without one (a checkpoint whose model type is not
    known at save time) the markers are stripped from the tokenizer's template.
    """
    if model_type is not None:
        training, plain = serving_template(tokenizer.chat_template, get_model_type(model_type), tokenizer)
    elif tokenizer.chat_template:
        training, plain = tokenizer.chat_template, strip_generation_markers(tokenizer.chat_template)
    else:
        raise ModelingError("The tokenizer has no chat template to write; set it with openchat_hf.setup_tokenizer.")
    write_chat_templates(directory, training, plain)
    return plain
