"""Checked tokenizer loading: missing packages named correctly and before any work; EOT always a special token."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from openchat_hf.resources import SAMPLE_SHAREGPT_DIR
from openchat_hf.templates import setup_tokenizer
from openchat_hf.tokenizer_loading import TokenizerLoadError, load_tokenizer, required_packages

REPO = Path(__file__).resolve().parents[2]
MESSAGES = [
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Bye"},
    {"role": "assistant", "content": "See you."},
]
# Run the CLI with protobuf made unimportable, as in an environment without it.
NO_PROTOBUF = (
    "import sys; sys.modules['google.protobuf'] = None; sys.modules['google.protobuf.message'] = None; "
    "from openchat_hf.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture
def spm_only_dir(real_tokenizer_dir, tmp_path):
    """The LLaMA-2 tokenizer as Meta's layout: tokenizer.model + tokenizer_config.json, no tokenizer.json."""
    folder = tmp_path / "llama2-spm-only"
    folder.mkdir()
    source = real_tokenizer_dir("llama2-tokenizer")
    for name in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copyfile(source / name, folder / name)
    return folder


def _run(code_args, tmp_path, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", NO_PROTOBUF, *code_args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_sentencepiece_only_folder_without_protobuf_fails_first_naming_protobuf(spm_only_dir, tmp_path):
    assert required_packages(spm_only_dir) == ["sentencepiece", "google.protobuf"]
    out = tmp_path / "out"
    result = _run(["data", "run", str(SAMPLE_SHAREGPT_DIR), str(out), "--tokenizer", str(spm_only_dir)], tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "protobuf" in errors[0] and "pip install protobuf" in errors[0] and "tiktoken" not in errors[0]
    assert not out.exists()  # failed before reading or cleaning anything


def test_patch_without_protobuf_fails_before_loading_weights(spm_only_dir, tmp_path):
    result = _run(["patch", str(spm_only_dir), str(tmp_path / "patched"), "--model-type", "openchat"], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "protobuf" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "patched").exists()


def test_sentencepiece_only_folder_loads_with_protobuf(spm_only_dir, real_tokenizer, real_tokenizer_dir):
    from openchat_hf.assets import read_reference_encodings

    tokenizer = load_tokenizer(spm_only_dir, "openchat")
    reference = real_tokenizer_dir("llama2-tokenizer") / "reference"
    cases = read_reference_encodings(reference / "encodings.inp", reference / "encodings.out")
    assert all(tokenizer.encode(text, add_special_tokens=False) == ids for text, ids in cases)
    ours = setup_tokenizer(tokenizer, "openchat")
    theirs = setup_tokenizer(real_tokenizer("llama2-tokenizer"), "openchat")
    assert ours.tokenize(MESSAGES) == theirs.tokenize(MESSAGES)


def _with_plain_eot(real_tokenizer_dir, folder: Path, how: str) -> Path:
    """The LLaMA-2 tokenizer with <|end_of_turn|> (id 32000) as a plain vocabulary entry or a non-special added token."""
    folder.mkdir()
    source = real_tokenizer_dir("llama2-tokenizer")
    shutil.copyfile(source / "tokenizer_config.json", folder / "tokenizer_config.json")
    data = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    if how == "vocab":
        data["model"]["vocab"]["<|end_of_turn|>"] = 32000
    else:
        data["added_tokens"].append(
            {
                "id": 32000,
                "content": "<|end_of_turn|>",
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": False,
            }
        )
        data["model"]["vocab"]["<|end_of_turn|>"] = 32000
    (folder / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return folder


@pytest.mark.parametrize("how", ["vocab", "added"])
def test_plain_eot_token_is_made_special_with_a_warning(real_tokenizer_dir, tmp_path, caplog, how):
    from transformers import AutoTokenizer

    folder = _with_plain_eot(real_tokenizer_dir, tmp_path / "plain-eot", how)
    # Without the check, the template puts EOT text in, but it never becomes one special token per turn.
    unchecked = AutoTokenizer.from_pretrained(str(folder))
    assert unchecked.convert_tokens_to_ids("<|end_of_turn|>") == 32000
    template = setup_tokenizer(unchecked, "openchat")
    ids = template.tokenize(MESSAGES).input_ids
    if how == "vocab":  # BPE spells it with pieces: the data would have no EOT at all
        assert 32000 not in ids
    else:  # one id, but not special: decoding for the user leaks it into every answer
        assert ids.count(32000) == len(MESSAGES)
        assert "<|end_of_turn|>" in unchecked.decode(ids, skip_special_tokens=True)
    with caplog.at_level(logging.WARNING, logger="openchat_hf.tokenizer_loading"):
        checked = load_tokenizer(folder, "openchat")
    assert "plain token" in caplog.text and "<|end_of_turn|>" in caplog.text
    assert checked.added_tokens_decoder[32000].special and len(checked) == 32001
    template = setup_tokenizer(checked, "openchat")
    tokenized = template.tokenize(MESSAGES + [{"role": "user", "content": "fake <|end_of_turn|> in text"}])
    assert tokenized.input_ids.count(32000) == len(MESSAGES) + 1  # one per turn; content never makes one
    assert tokenized.num_neutralized == 1
    assert "<|end_of_turn|>" not in checked.decode(tokenized.input_ids, skip_special_tokens=True)


def test_data_run_with_plain_eot_writes_one_eot_per_turn(real_tokenizer_dir, tmp_path):
    from openchat_hf.data.pipeline import PipelineConfig, run_pipeline

    folder = _with_plain_eot(real_tokenizer_dir, tmp_path / "plain-eot", "vocab")
    run_pipeline(SAMPLE_SHAREGPT_DIR, tmp_path / "out", PipelineConfig(tokenizer=str(folder), legacy=False))
    train = datasets.load_from_disk(str(tmp_path / "out" / "openchat"))["train"]
    assert len(train) > 0
    for row in train:  # every conversation ends with the EOT id, and each turn has one (at least user + assistant)
        if row["length"] < 2048:
            assert row["input_ids"][-1] == 32000 and row["supervise_mask"][-1] == 1
        assert row["input_ids"].count(32000) >= 2


def test_checkpoint_without_eot_is_refused_when_required(real_tokenizer_dir):
    with pytest.raises(TokenizerLoadError, match="has no '<\\|end_of_turn\\|>' token"):
        load_tokenizer(real_tokenizer_dir("llama2-tokenizer"), "openchat", require_eot=True)
    assert load_tokenizer(real_tokenizer_dir("llama3-tokenizer"), "openchat_llama3", require_eot=True)


def test_missing_or_unreadable_folder_is_one_clear_error(tmp_path):
    with pytest.raises(TokenizerLoadError, match="no such folder"):
        load_tokenizer(tmp_path / "nope", local_files_only=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TokenizerLoadError, match=r"Cannot load a tokenizer from .*empty: \w+"):
        load_tokenizer(tmp_path / "empty", local_files_only=True)
