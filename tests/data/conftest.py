"""Fixtures of the data tests: saved tiny tokenizers and one pipeline run over the bundled sample set."""

from __future__ import annotations

import pytest

from openchat_hf.data import PipelineConfig, run_pipeline
from openchat_hf.resources import SAMPLE_SHAREGPT_DIR


@pytest.fixture(scope="session")
def tokenizer_dirs(base_tokenizers, tmp_path_factory):
    """``{"llama": dir, "gpt2": dir}``: the tiny base tokenizers saved to disk (no EOT yet)."""
    out = {}
    for style, tok in base_tokenizers.items():
        path = tmp_path_factory.mktemp(f"tok_{style}")
        tok.save_pretrained(path)
        out[style] = path
    return out


@pytest.fixture(scope="session")
def sample_run(tokenizer_dirs, tmp_path_factory):
    """The pipeline over the bundled sample set, for openchat and opencoder: ``(output_dir, report)``."""
    out = tmp_path_factory.mktemp("sample_out")
    config = PipelineConfig(
        model_types="openchat,opencoder",
        tokenizer=f"openchat={tokenizer_dirs['llama']},opencoder={tokenizer_dirs['gpt2']}",
        eval_ratio=0.1,
        decontaminate=False,  # the sample is made of the benchmark questions themselves
    )
    return out, run_pipeline(SAMPLE_SHAREGPT_DIR, out, config)
