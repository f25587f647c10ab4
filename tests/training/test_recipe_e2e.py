"""`accelerate launch recipes/sft.py` end to end on the tiny CPU recipe, and kill-and-resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training_helpers import SFT_SCRIPT, TINY_RECIPE

ACCELERATE = str(Path(sys.executable).parent / "accelerate")


def launch(args: list[str], *, num_processes: int = 1, config_file: str | None = None, timeout: int = 240, env=None):
    cmd = [ACCELERATE, "launch", "--num_processes", str(num_processes), "--num_machines", "1", "--mixed_precision", "no"]
    if config_file:
        cmd += ["--config_file", config_file]
    else:
        cmd += ["--cpu"] + (["--multi_gpu"] if num_processes > 1 else [])
    cmd += ["--main_process_port", str(_free_port()), str(SFT_SCRIPT), "--config", str(TINY_RECIPE), *args]
    full_env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tiny_recipe_trains_and_saves_contract_checkpoint(patched_tiny, sft_data_dir, tmp_path):
    out = tmp_path / "ckpt"
    result = launch(
        ["--model_name_or_path", str(patched_tiny), "--dataset_path", str(sft_data_dir), "--output_dir", str(out),
         "--num_train_epochs", "2", "--max_tokens_per_batch", "1024", "--logging_steps", "2"]
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["openchat_model_type"] == "openchat"
    tok_config = json.loads((out / "tokenizer_config.json").read_text())
    assert "<|end_of_turn|>" in tok_config["chat_template"]
    assert (out / "chat_template.jinja").read_text() == tok_config["chat_template"]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out)
    eot = tokenizer.convert_tokens_to_ids("<|end_of_turn|>")
    generation = json.loads((out / "generation_config.json").read_text())
    assert isinstance(generation["eos_token_id"], list) and eot in generation["eos_token_id"]
    card = (out / "README.md").read_text()
    assert str(patched_tiny) in card and str(sft_data_dir) in card and "config_cpu.yaml" in card
    assert '"learning_rate": 0.001' in card
    state = json.loads((out / "trainer_state.json").read_text())
    logs = [h for h in state["log_history"] if "loss" in h]
    assert logs and all("train_tokens_per_second" in h and "supervised_tokens_per_step" in h for h in logs)
    assert logs[-1]["loss"] < logs[0]["loss"]
