"""The compiled few-row CPU kernel of the embedded backend: the same products as ``F.linear`` for 1-3 rows, torch's
own kernel for more, tied weights stay tied, and a machine without a C++ compiler keeps torch's layers."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from openchat_hf.serving.backends.cpu_linear import MIN_WEIGHT_ELEMENTS, compile_few_row_linear, uses_few_row_kernel


def small_llama() -> LlamaForCausalLM:
    """Every weight at least MIN_WEIGHT_ELEMENTS (512 x 512), embeddings tied, as SmolLM2."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=1024,
        hidden_size=512,
        intermediate_size=1024,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=8,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


def big_linears(model) -> list[torch.nn.Linear]:
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.weight.numel() >= MIN_WEIGHT_ELEMENTS]


@pytest.fixture(scope="module")
def compiled():
    model = small_llama()
    reference = copy.deepcopy(model)
    count = compile_few_row_linear(model)
    return model, reference, count


def test_every_large_fp32_layer_gets_the_kernel_and_tied_weights_stay_tied(compiled):
    model, _, count = compiled
    layers = big_linears(model)
    assert count == len(layers) == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer, and lm_head
    assert all(uses_few_row_kernel(m) for m in layers)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_few_rows_give_linears_products(compiled, rows):
    model, _, _ = compiled
    torch.manual_seed(rows)
    for layer in (model.model.layers[0].mlp.down_proj, model.lm_head):
        x = torch.randn(1, rows, layer.in_features)
        with torch.inference_mode():
            got = layer(x)
        assert got.shape == (1, rows, layer.out_features)
        torch.testing.assert_close(got, F.linear(x, layer.weight), rtol=1e-5, atol=1e-5)


def test_more_rows_and_other_dtypes_go_to_torchs_kernel(compiled):
    model, _, _ = compiled
    layer = model.model.layers[0].mlp.gate_proj
    with torch.inference_mode():
        for x in (
            torch.randn(4, layer.in_features),
            torch.randn(2, 8, layer.in_features),
            torch.randn(0, layer.in_features),
        ):
            assert torch.equal(layer(x), F.linear(x, layer.weight))
        half = torch.randn(1, layer.in_features, dtype=torch.bfloat16)
        with pytest.raises(RuntimeError):  # what nn.Linear itself does with a bf16 input on fp32 weights
            layer(half)


def test_a_decoding_step_gives_the_same_logits_as_the_plain_model(compiled):
    model, reference, _ = compiled
    ids = torch.tensor([[5, 17, 300, 42, 9, 811]])
    logits = []
    with torch.inference_mode():
        for m in (model, reference):
            cache = DynamicCache(config=m.config)
            m(input_ids=ids, cache=cache, use_cache=True)  # prefill: 6 rows, torch's kernel
            logits.append(m(input_ids=torch.tensor([[77]]), cache=cache, use_cache=True).logits)
    torch.testing.assert_close(logits[0], logits[1], rtol=1e-4, atol=1e-4)
    assert logits[0].argmax(-1).item() == logits[1].argmax(-1).item()


def test_without_a_cxx_compiler_the_model_keeps_torchs_layers(tmp_path):
    script = textwrap.dedent(
        f"""
        import json, logging, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        logging.basicConfig(level=logging.WARNING)
        from test_cpu_linear import big_linears, small_llama
        from openchat_hf.serving.backends.cpu_linear import compile_few_row_linear, uses_few_row_kernel
        model = small_llama()
        count = compile_few_row_linear(model)
        print(json.dumps({{"count": count, "patched": sum(uses_few_row_kernel(m) for m in big_linears(model))}}))
        """
    )
    env = {**os.environ, "CXX": str(tmp_path / "no-such-c++"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"count": 0, "patched": 0}
    assert "CPU decoding kernel unavailable" in done.stderr
