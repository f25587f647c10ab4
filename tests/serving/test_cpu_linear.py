"""The fp32 CPU kernels of the embedded backend: the same products as ``F.linear`` on the compiled kernel (up to
``max_rows`` rows) and on prepacked oneDNN weights (more rows, prefill), torch's own kernel without prepacking, tied
weights stay tied, the compiled package is reused from disk (no compiler needed then), and a machine without a C++
compiler keeps torch's layers."""

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

from openchat_hf.serving.backends.cpu_linear import (
    KERNEL_MAX_ROWS,
    MIN_WEIGHT_ELEMENTS,
    CpuKernels,
    fast_cpu_linears,
    uses_few_row_kernel,
)

MAX_ROWS = 16  # fast_cpu_linears' default without prepacked weights


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


def patched(prepack: bool):
    """A small model given the kernels, an unpatched copy of it, and what ``fast_cpu_linears`` reported."""
    model = small_llama()
    reference = copy.deepcopy(model)
    return model, reference, fast_cpu_linears(model, prepack=prepack)


@pytest.fixture(scope="module")
def compiled():
    """The kernel alone (no prepacked weights): up to MAX_ROWS rows compiled, more on MKL."""
    return patched(prepack=False)


@pytest.fixture(scope="module")
def prepacked():
    """The kernel for 1-3 rows and oneDNN on prepacked weights for more."""
    return patched(prepack=True)


def test_every_large_fp32_layer_gets_the_kernel_and_tied_weights_stay_tied(compiled, prepacked):
    for model, *_ in (compiled, prepacked):
        layers = big_linears(model)
        assert len(layers) == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer, and lm_head
        assert all(uses_few_row_kernel(m) for m in layers)
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert compiled[2] == CpuKernels(compiled=15, prepacked=0)
    assert prepacked[2] == CpuKernels(compiled=15, prepacked=15)


@pytest.mark.parametrize("rows", [4, 9, 32, 200])
def test_more_rows_on_prepacked_weights_give_linears_products(prepacked, rows):
    model, _, _ = prepacked
    torch.manual_seed(rows)
    for layer in (model.model.layers[1].self_attn.o_proj, model.lm_head):
        x = torch.randn(2, rows, layer.in_features)[:, ::2] if rows > 4 else torch.randn(rows, layer.in_features)
        with torch.inference_mode():
            got = layer(x)
        assert got.shape == (*x.shape[:-1], layer.out_features)
        torch.testing.assert_close(got, F.linear(x, layer.weight), rtol=1e-4, atol=1e-4)


def test_auto_prepacks_only_when_the_copy_fits_in_half_the_free_memory(monkeypatch):
    from openchat_hf.serving.backends import cpu_linear

    weights = sum(m.weight.numel() * 4 for m in big_linears(small_llama()))
    monkeypatch.setattr(cpu_linear, "_available_memory", lambda: 2 * weights)
    assert fast_cpu_linears(small_llama()).prepacked == 15
    monkeypatch.setattr(cpu_linear, "_available_memory", lambda: 2 * weights - 1)
    model = small_llama()
    assert fast_cpu_linears(model) == CpuKernels(compiled=15, prepacked=0)
    x = torch.randn(MAX_ROWS, 512)  # without the copy the kernel takes up to 16 rows
    with torch.inference_mode():
        torch.testing.assert_close(model.lm_head(x), F.linear(x, model.lm_head.weight), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows", [1, 2, 3, 7, MAX_ROWS])
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
            torch.randn(MAX_ROWS + 1, layer.in_features),
            torch.randn(3, 6, layer.in_features),
            torch.randn(0, layer.in_features),
        ):
            assert torch.equal(layer(x), F.linear(x, layer.weight))
        half = torch.randn(1, layer.in_features, dtype=torch.bfloat16)
        with pytest.raises(RuntimeError):  # what nn.Linear itself does with a bf16 input on fp32 weights
            layer(half)


def test_a_non_contiguous_input_gives_the_same_product(compiled):
    model, _, _ = compiled
    layer = model.model.layers[0].self_attn.q_proj
    x = torch.randn(layer.in_features, 3).t()  # 3 rows, transposed: not contiguous
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("max_rows", [0, KERNEL_MAX_ROWS + 1])
def test_max_rows_outside_what_the_kernel_is_built_for_is_refused(max_rows):
    with pytest.raises(ValueError, match="max_rows"):
        fast_cpu_linears(small_llama(), max_rows=max_rows)


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


SCRIPT = textwrap.dedent(
    f"""
    import json, logging, sys
    sys.path.insert(0, {os.path.dirname(__file__)!r})
    logging.basicConfig(level=logging.INFO)
    from test_cpu_linear import big_linears, small_llama
    from openchat_hf.serving.backends.cpu_linear import fast_cpu_linears, uses_few_row_kernel
    model = small_llama()
    count = fast_cpu_linears(model).compiled
    print(json.dumps({{"count": count, "patched": sum(uses_few_row_kernel(m) for m in big_linears(model))}}))
    """
)


def run_fresh(env: dict) -> tuple[dict, str]:
    """``fast_cpu_linears`` on a fresh small model in a new process: its counts, and its log."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env={**os.environ, **env}, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_the_kernel_is_compiled_once_then_loaded_from_disk_without_a_compiler(tmp_path):
    kernels = tmp_path / "kernels"
    first, log = run_fresh({"OPENCHAT_HF_KERNELS": str(kernels), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "i1")})
    assert first == {"count": 15, "patched": 15}
    assert "Compiling the CPU decoding kernel" in log
    [package] = kernels.glob("few_row_matmul-*.pt2")  # one package for every weight shape, no temporary left
    # The second server start finds it: no compiler needed (a broken one would fail a compile), none run.
    env = {
        "OPENCHAT_HF_KERNELS": str(kernels),
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "i2"),
        "CXX": str(tmp_path / "no-such-c++"),
    }
    second, log = run_fresh(env)
    assert second == first
    assert "Compiling" not in log and "unavailable" not in log
    assert list(kernels.iterdir()) == [package]


def test_without_a_cxx_compiler_the_model_keeps_torchs_layers(tmp_path):
    env = {
        "CXX": str(tmp_path / "no-such-c++"),
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache"),
        "OPENCHAT_HF_KERNELS": str(tmp_path / "kernels"),
    }
    counts, log = run_fresh(env)
    assert counts == {"count": 0, "patched": 0}
    assert "CPU decoding kernel unavailable" in log
    assert not list((tmp_path / "kernels").glob("*.pt2"))  # nothing half-written is left to be loaded later


@pytest.mark.parametrize(("kernels", "layers"), [("compiled", (15, 15)), ("few-row", (15, 0)), ("torch", (0, 0))])
def test_the_backend_sets_up_the_kernels_it_is_given(chat_model_dir, kernels, layers):
    import asyncio

    from openchat_hf.serving.backends.transformers import TransformersBackend
    from openchat_hf.tokenizer_loading import load_tokenizer

    backend = TransformersBackend(small_llama(), load_tokenizer(chat_model_dir), eos_token_ids=[], cpu_kernels=kernels)

    async def start_and_close():
        await backend.start()  # the worker sets the kernels up before it takes requests
        await backend.close()

    asyncio.run(start_and_close())
    assert (backend.compiled_layers, backend.prepacked_layers) == layers


def test_an_unknown_kernel_choice_is_refused(chat_model_dir):
    from openchat_hf.serving.backends.transformers import TransformersBackend
    from openchat_hf.serving.errors import ServingError

    with pytest.raises(ServingError, match="cpu_kernels must be one of compiled, few-row, torch"):
        TransformersBackend.from_pretrained(chat_model_dir, cpu_kernels="fast")


@pytest.mark.parametrize("rows", [1, 9])
def test_a_deep_copy_and_a_changed_weight_compute_with_their_own_weights(prepacked, rows):
    """The kernels read the module's weight when called (a copy of the model uses its copy), and prepacked weights
    are packed again after an in-place change (which a test patching a copy's ``lm_head`` row does)."""
    model, _, _ = prepacked
    twin = copy.deepcopy(model)
    x = torch.randn(rows, 512)
    with torch.inference_mode():
        before = model.lm_head(x)
    with torch.no_grad():
        twin.lm_head.weight[7] = twin.lm_head.weight[3] * 1.5
    assert uses_few_row_kernel(twin.lm_head)
    with torch.inference_mode():
        torch.testing.assert_close(twin.lm_head(x), F.linear(x, twin.lm_head.weight), rtol=1e-4, atol=1e-4)
        assert torch.equal(model.lm_head(x), before)  # the original's weights are untouched
    layer = copy.deepcopy(model.model.layers[0].mlp.up_proj)
    with torch.no_grad():
        layer.weight.mul_(-2)
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight), rtol=1e-4, atol=1e-4)
