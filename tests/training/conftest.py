"""Training fixtures: a tiny patched LLaMA and a tokenized dataset in the data pipeline's contract format."""

from __future__ import annotations

import copy

import pytest
from training_helpers import tokenized_rows


@pytest.fixture(scope="session")
def patched_tiny(tiny_chat_dir):
    """The tiny LLaMA base patched for ``openchat`` (the shared fixture of tests/conftest.py)."""
    return tiny_chat_dir


@pytest.fixture(scope="session")
def patched_tokenizer(patched_tiny):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(patched_tiny)


@pytest.fixture
def fresh_model(patched_tiny):
    """A new copy of the patched tiny model (float32, train mode)."""
    from transformers import AutoModelForCausalLM

    def make(attn: str = "sdpa"):
        model = AutoModelForCausalLM.from_pretrained(patched_tiny, attn_implementation=attn, dtype="float32")
        model.train()
        return model

    return make


@pytest.fixture(scope="session")
def sft_data_dir(patched_tokenizer, tmp_path_factory):
    """``OUT/openchat``: a DatasetDict (train 96 / eval 8) saved to disk, columns as the pipeline writes them."""
    import datasets

    rows = tokenized_rows(patched_tokenizer, 104, max_length=160)
    out = tmp_path_factory.mktemp("pipeline_out") / "openchat"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows[:96]), "eval": datasets.Dataset.from_list(rows[96:])}
    ).save_to_disk(str(out))
    return out


@pytest.fixture(scope="session")
def pipeline_out(patched_tiny, tmp_path_factory):
    """``openchat-hf data run`` on the bundled ShareGPT sample (the data pipeline's real output folder)."""
    from openchat_hf.data import PipelineConfig, run_pipeline
    from openchat_hf.resources import SAMPLE_SHAREGPT_DIR

    out = tmp_path_factory.mktemp("data_run")
    run_pipeline(
        SAMPLE_SHAREGPT_DIR,
        out,
        PipelineConfig(model_types="openchat", tokenizer=str(patched_tiny), eval_ratio=0.1, decontaminate=False),
    )
    return out


@pytest.fixture
def copy_tokenizer(patched_tokenizer):
    return lambda: copy.deepcopy(patched_tokenizer)
