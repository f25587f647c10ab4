"""extend_context: the patched model's rotary cos/sin beyond 2048 match each method's formula."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

from openchat_hf.modeling import ModelingError, context_length, extend_context, legacy_rope_fields
from openchat_hf.tiny import build_tiny_model

THETA, ORIGINAL, TARGET, HEAD_DIM = 10000.0, 2048, 8192, 16
POSITIONS = [0, 1, 1000, 2047, 2048, 2049, 3000, 4097, 6000, 8191]


def expected_inv_freq(method: str) -> tuple[torch.Tensor, float]:
    """Each method's inverse frequencies and attention scale, written from the papers (float64)."""
    d = HEAD_DIM
    exponents = torch.arange(0, d, 2, dtype=torch.float64) / d
    plain = 1.0 / THETA**exponents
    s = TARGET / ORIGINAL
    if method == "extrapolate":
        return plain, 1.0
    if method == "linear":  # position interpolation: p -> p / s
        return plain / s, 1.0
    if method == "dynamic":  # NTK-aware base at the current length L = 8192: theta * (s * L / L0 - (s - 1))^(d/(d-2))
        base = THETA * (s * TARGET / ORIGINAL - (s - 1)) ** (d / (d - 2))
        return 1.0 / base**exponents, 1.0

    # YaRN (NTK-by-parts, alpha=1, beta=32) with attention scale 0.1 ln(s) + 1
    def correction_dim(rotations: float) -> float:
        return d * math.log(ORIGINAL / (rotations * 2 * math.pi)) / (2 * math.log(THETA))

    low, high = max(math.floor(correction_dim(32)), 0), min(math.ceil(correction_dim(1)), d - 1)
    ramp = ((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    return plain * (1 - ramp) + (plain / s) * ramp, 0.1 * math.log(s) + 1.0


def rotary_cos_sin(model, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.zeros(1, len(positions), HEAD_DIM)
    cos, sin = model.model.rotary_emb(x, torch.tensor([positions]))
    return cos[0].double(), sin[0].double()


@pytest.fixture
def tiny_llama(base_tokenizers):
    return build_tiny_model(base_tokenizers["llama"], "llama", max_position_embeddings=ORIGINAL)


@pytest.mark.parametrize("method", ["extrapolate", "linear", "dynamic", "yarn"])
def test_rotary_embeddings_match_the_formula(tiny_llama, method):
    model = tiny_llama
    before_cos, _ = rotary_cos_sin(model, POSITIONS)
    extend_context(model, TARGET, method)

    inv_freq, scale = expected_inv_freq(method)
    angles = torch.tensor(POSITIONS, dtype=torch.float64)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    cos, sin = rotary_cos_sin(model, POSITIONS)
    torch.testing.assert_close(cos, angles.cos() * scale, rtol=0, atol=2e-3)
    torch.testing.assert_close(sin, angles.sin() * scale, rtol=0, atol=2e-3)
    beyond = [i for i, p in enumerate(POSITIONS) if p >= ORIGINAL]
    if method == "extrapolate":  # extrapolation keeps plain RoPE everywhere
        torch.testing.assert_close(cos, before_cos, rtol=0, atol=1e-5)
    else:  # every other method changes the rotations of long positions
        assert (cos[beyond] - before_cos[beyond]).abs().max() > 0.1

    config = model.config
    assert context_length(config) == TARGET
    assert config.max_position_embeddings == (ORIGINAL if method == "dynamic" else TARGET)
    assert config.openchat_context_extension == {
        "method": method,
        "original_max_position_embeddings": ORIGINAL,
        "max_length": TARGET,
    }
    # The saved config rebuilds the same rotary embedding (what a reloaded checkpoint uses).
    reloaded = LlamaConfig.from_dict(config.to_dict())
    rotary = LlamaRotaryEmbedding(reloaded)
    cos2, _ = rotary(torch.zeros(1, len(POSITIONS), HEAD_DIM), torch.tensor([POSITIONS]))
    torch.testing.assert_close(cos2[0].double(), cos, rtol=0, atol=1e-6)


def test_legacy_rope_fields_for_transformers4():
    config = LlamaConfig(max_position_embeddings=ORIGINAL, hidden_size=64, num_attention_heads=4)
    assert legacy_rope_fields(config.to_dict()) == {"rope_theta": THETA, "rope_scaling": None}
    extend_context(config, TARGET, "yarn")
    fields = legacy_rope_fields(config.to_dict())
    assert fields == {
        "rope_theta": THETA,
        "rope_scaling": {
            "rope_type": "yarn",
            "type": "yarn",
            "factor": 4.0,
            "original_max_position_embeddings": ORIGINAL,
        },
    }


def test_already_long_enough_is_unchanged():
    config = LlamaConfig(max_position_embeddings=TARGET, hidden_size=64, num_attention_heads=4)
    before = config.to_dict()
    extend_context(config, 4096, "linear")
    assert config.to_dict() == before


def test_errors(base_tokenizers):
    bigcode = build_tiny_model(base_tokenizers["gpt2"], "gpt_bigcode")
    with pytest.raises(ModelingError, match="no rotary position embeddings"):
        extend_context(bigcode, TARGET)
    config = LlamaConfig(max_position_embeddings=ORIGINAL, hidden_size=64, num_attention_heads=4)
    with pytest.raises(ModelingError, match="extrapolate, linear, dynamic, yarn"):
        extend_context(config, TARGET, "ntk")
    extend_context(config, 4096, "linear")
    with pytest.raises(ModelingError, match="already uses rope_type='linear'"):
        extend_context(config, TARGET, "yarn")
