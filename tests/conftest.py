"""Shared fixtures: tiny tokenizers and models built locally (never downloaded)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import copy  # noqa: E402

import pytest  # noqa: E402

from openchat_hf.model_types import get_model_type  # noqa: E402
from openchat_hf.templates import setup_tokenizer  # noqa: E402
from openchat_hf.tiny import build_tiny_tokenizer, save_tiny_base  # noqa: E402

pytest_plugins = ["real_assets"]  # real tokenizers and SmolLM2 from the package index (tests/real_assets.py)

STYLE_OF_FAMILY = {"llama": "llama", "mistral": "llama", "gpt_bigcode": "gpt2"}


@pytest.fixture(scope="session")
def base_tokenizers():
    """One tiny BPE tokenizer per style, without the EOT token."""
    return {style: build_tiny_tokenizer(style) for style in ("llama", "gpt2")}


@pytest.fixture(scope="session")
def make_tokenizer(base_tokenizers):
    """``make_tokenizer("openchat")`` -> a fresh copy of the right tiny tokenizer, set up for that model type."""

    def make(model_type: str):
        mt = get_model_type(model_type)
        tokenizer = copy.deepcopy(base_tokenizers[STYLE_OF_FAMILY[mt.family]])
        setup_tokenizer(tokenizer, mt)
        return tokenizer

    return make


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    """A saved tiny random-init LLaMA base model + tokenizer (no EOT yet)."""
    return save_tiny_base(tmp_path_factory.mktemp("tiny_llama"), "llama")


@pytest.fixture(scope="session")
def tiny_bigcode_dir(tmp_path_factory):
    """A saved tiny random-init GPTBigCode (StarCoder-shaped) base model + tokenizer (no EOT yet)."""
    return save_tiny_base(tmp_path_factory.mktemp("tiny_bigcode"), "gpt_bigcode")


@pytest.fixture(scope="session")
def tiny_chat_dir(tiny_llama_dir, tmp_path_factory):
    """The tiny LLaMA patched for ``openchat`` (EOT token, chat template, generation EOS), as `openchat-hf patch` does."""
    from openchat_hf.modeling import patch_model

    return patch_model(tiny_llama_dir, tmp_path_factory.mktemp("tiny_chat") / "tiny-openchat", "openchat")
