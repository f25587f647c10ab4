"""The served context comes from ``modeling.context.context_length`` for every RoPE method."""

from __future__ import annotations

import pytest
from transformers import LlamaConfig

from openchat_hf.model_types import get_model_type
from openchat_hf.modeling.context import context_length, extend_context
from openchat_hf.serving.errors import ServingError
from openchat_hf.serving.service import serving_context


@pytest.mark.parametrize("method", ["extrapolate", "linear", "dynamic", "yarn"])
def test_every_extension_method_is_served_at_its_length(method):
    config = extend_context(LlamaConfig(max_position_embeddings=2048), 8192, method)
    assert context_length(config) == 8192
    assert serving_context(get_model_type("openchat"), config) == 8192  # extended beyond the model type
    assert serving_context(get_model_type("openchat_8192"), config) == 8192


def test_yarn_config_that_keeps_the_original_length_is_extended():
    """Hub YaRN configs (e.g. Qwen2.5 with factor 4) keep max_position_embeddings at the original length."""
    rope = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4096, "rope_theta": 1e6}
    config = LlamaConfig(max_position_embeddings=4096, rope_parameters=rope)
    assert context_length(config) == 16384


def test_plain_model_is_capped_by_the_model_type_and_max_context_by_the_model():
    config = LlamaConfig(max_position_embeddings=4096)
    assert serving_context(get_model_type("openchat"), config) == 2048
    assert serving_context(get_model_type("openchat"), config, 4096) == 4096
    with pytest.raises(ServingError, match="beyond the model's context of 4096"):
        serving_context(get_model_type("openchat"), config, 8192)
