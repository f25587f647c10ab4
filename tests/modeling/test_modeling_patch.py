"""patch_model and `openchat-hf patch`: the saved checkpoint has everything the contract lists."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from openchat_hf.cli import main
from openchat_hf.model_types import EOT_TOKEN
from openchat_hf.modeling import ModelingError, patch_model
from openchat_hf.templates import ChatTemplate

CONVERSATION = [
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4."},
    {"role": "user", "content": "And 3 + 3?"},
]


def test_patched_llama_checkpoint(tiny_llama_dir, patched_llama):
    config = json.loads((patched_llama / "config.json").read_text())
    assert config["openchat_model_type"] == "openchat_8192"
    assert config["openchat_eot_init"] == "mean"
    assert config["max_position_embeddings"] == 8192  # openchat_8192 extrapolates a 2048-token base
    assert config["rope_parameters"]["rope_type"] == "default"
    assert config["openchat_context_extension"]["method"] == "extrapolate"

    tokenizer = AutoTokenizer.from_pretrained(patched_llama)
    eot = tokenizer.convert_tokens_to_ids(EOT_TOKEN)
    assert eot == config["vocab_size"] - 1
    assert GenerationConfig.from_pretrained(patched_llama).eos_token_id == [eot, tokenizer.eos_token_id]
    # The chat template is the model type's: apply_chat_template == ChatTemplate.tokenize, mask included.
    reference = ChatTemplate("openchat_8192", tokenizer).tokenize(
        CONVERSATION + [{"role": "assistant", "content": "6"}]
    )
    out = tokenizer.apply_chat_template(
        CONVERSATION + [{"role": "assistant", "content": "6"}],
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    assert out["input_ids"] == reference.input_ids and out["assistant_masks"] == reference.supervise_mask
    tokenizer_config = json.loads((patched_llama / "tokenizer_config.json").read_text())
    assert "{%- generation" not in tokenizer_config["chat_template"]
    assert "{%- generation" in (patched_llama / "chat_template.jinja").read_text()
    assert "local_files_only" not in tokenizer_config
    assert tokenizer.model_max_length == 8192

    base = load_file(tiny_llama_dir / "model.safetensors")
    patched = load_file(patched_llama / "model.safetensors")
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        assert torch.equal(patched[name][:-1], base[name])
        torch.testing.assert_close(patched[name][-1], base[name].mean(0), rtol=0, atol=1e-6)
    model = AutoModelForCausalLM.from_pretrained(patched_llama)
    assert model.config.openchat_model_type == "openchat_8192"


def test_patched_bigcode_checkpoint(patched_bigcode):
    config = json.loads((patched_bigcode / "config.json").read_text())
    assert config["openchat_model_type"] == "opencoder"
    assert config["openchat_eot_init"] == "normal"
    assert config["n_positions"] == 2048  # learned positions: not extended
    model = AutoModelForCausalLM.from_pretrained(patched_bigcode)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    tokenizer = AutoTokenizer.from_pretrained(patched_bigcode)
    text = tokenizer.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True)
    assert text == f"User:What is 2 + 2?{EOT_TOKEN}Assistant:4.{EOT_TOKEN}User:And 3 + 3?{EOT_TOKEN}Assistant:"


def test_context_method_option(tiny_llama_dir, tmp_path):
    out = patch_model(tiny_llama_dir, tmp_path / "yarn", "openchat_8192", context_method="yarn", eot_init="normal")
    config = json.loads((out / "config.json").read_text())
    assert config["rope_parameters"] == {
        "rope_type": "yarn",
        "rope_theta": 10000.0,
        "factor": 4.0,
        "original_max_position_embeddings": 2048,
    }
    assert config["openchat_eot_init"] == "normal"


def test_errors_leave_no_output(tiny_bigcode_dir, tiny_llama_dir, tmp_path):
    with pytest.raises(ModelingError, match="no rotary position embeddings"):
        patch_model(tiny_bigcode_dir, tmp_path / "bad", "opencoder", context_method="linear")
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ModelingError, match="Cannot load a causal LM"):
        patch_model(tmp_path / "missing", tmp_path / "bad", "openchat")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(ModelingError, match="--overwrite"):
        patch_model(tiny_llama_dir, tmp_path / "busy", "openchat")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]  # no temporary folders left behind


def test_cli_patch(tiny_llama_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["patch", str(tiny_llama_dir), str(out), "--model-type", "openchat", "--eot-init", "normal"]) == 0
    assert str(out) in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["openchat_model_type"] == "openchat" and config["openchat_eot_init"] == "normal"
    assert config["max_position_embeddings"] == 2048  # openchat is a 2048-token model type

    assert main(["patch", str(tiny_llama_dir), str(out), "--model-type", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("openchat-hf patch: error: Unknown model type 'nope'") and err.count("\n") == 1
