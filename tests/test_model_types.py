"""Model type registry."""

from __future__ import annotations

import pytest

from openchat_hf.model_types import (
    ModelType,
    ModelTypeError,
    get_model_type,
    list_model_types,
    parse_model_types,
    register_model_type,
)
from openchat_hf.templates import ChatTemplate


def test_builtin_model_types():
    assert {"openchat", "openchat_8192", "opencoder"} <= set(list_model_types())
    oc, oc8k, coder = get_model_type("openchat"), get_model_type("openchat_8192"), get_model_type("opencoder")
    assert (oc.family, oc.max_length, oc.eot_init, oc.add_bos) == ("llama", 2048, "mean", True)
    assert (oc8k.max_length, oc8k.context_extension, oc8k.user_prefix) == (8192, "extrapolate", "Human: ")
    assert (coder.family, coder.eot_init, coder.add_bos) == ("gpt_bigcode", "normal", False)
    assert (coder.user_prefix, coder.assistant_prefix) == ("User:", "Assistant:")


def test_unknown_model_type_lists_known_ones():
    with pytest.raises(ModelTypeError, match="Known: .*openchat"):
        get_model_type("nope")
    with pytest.raises(ModelTypeError, match="No model type"):
        parse_model_types(" , ")
    assert [m.name for m in parse_model_types("openchat, opencoder")] == ["openchat", "opencoder"]


def test_register_custom_model_type_and_use_it(make_tokenizer):
    mt = ModelType(
        name="test_zephyrish", family="mistral", max_length=4096, user_prefix="<u> ", assistant_prefix="<a> "
    )
    register_model_type(mt)
    with pytest.raises(ModelTypeError, match="already registered"):
        register_model_type(mt)
    register_model_type(mt, overwrite=True)
    template = ChatTemplate("test_zephyrish", make_tokenizer("openchat"))
    text = template.render([{"role": "user", "content": "q"}, {"role": "assistant", "content": "r"}]).text
    assert text == "<s><u> q<|end_of_turn|><a> r<|end_of_turn|>"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": ""}, "name"),
        ({"max_length": 0}, "max_length"),
        ({"eot_init": "zeros"}, "eot_init"),
    ],
)
def test_invalid_model_types_are_rejected(kwargs, message):
    base = {"name": "x", "family": "llama", "max_length": 16}
    with pytest.raises(ModelTypeError, match=message):
        ModelType(**{**base, **kwargs})
