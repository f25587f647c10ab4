"""Session fixtures for the real assets (registered in ``tests/conftest.py`` through ``pytest_plugins``).

The assets are fetched from the package index the first time (CI does the same and caches the assets directory),
then read from the cache (``openchat_hf.assets.cache_root()``). Nothing is skipped: a test that needs a real
tokenizer fails when it cannot be fetched.

    def test_x(real_tokenizer):
        tokenizer = real_tokenizer("llama3-tokenizer")  # a fresh copy, safe to modify
"""

from __future__ import annotations

import copy

import pytest

from openchat_hf.assets import fetch_asset

REAL_TOKENIZERS = ("llama2-tokenizer", "mistral-tokenizer", "starcoder-tokenizer", "llama3-tokenizer")
SMOLLM2 = "smollm2-135m-instruct"
# The five real tokenizers: the four tokenizer assets and SmolLM2's own.
ALL_REAL_TOKENIZERS = (*REAL_TOKENIZERS, SMOLLM2)


@pytest.fixture(scope="session")
def real_tokenizer_dir():
    """``real_tokenizer_dir("llama2-tokenizer")`` -> the cached Hugging Face folder of that asset."""
    folders: dict = {}

    def get(name: str):
        if name not in folders:
            folders[name] = fetch_asset(name, progress=False)
        return folders[name]

    return get


@pytest.fixture(scope="session")
def real_tokenizer(real_tokenizer_dir):
    """``real_tokenizer(name)`` -> a fresh copy of that asset's tokenizer (loaded once per session)."""
    from transformers import AutoTokenizer

    loaded: dict = {}

    def get(name: str):
        if name not in loaded:
            loaded[name] = AutoTokenizer.from_pretrained(str(real_tokenizer_dir(name)))
        return copy.deepcopy(loaded[name])

    return get


@pytest.fixture(scope="session")
def smollm2_dir(real_tokenizer_dir):
    """The SmolLM2-135M-Instruct model folder (float32 safetensors, config, tokenizer)."""
    return real_tokenizer_dir(SMOLLM2)
