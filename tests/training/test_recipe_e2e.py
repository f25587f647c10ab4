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
    cmd = [
        ACCELERATE,
        "launch",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
    ]
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


def test_tiny_recipe_trains_and_saves_contract_checkpoint(tiny_llama_dir, pipeline_out, tmp_path):
    """From a base model without EOT (patched on the fly) and the pipeline's OUT/openchat to a checkpoint."""
    out = tmp_path / "ckpt"
    sft_data_dir = pipeline_out / "openchat"
    result = launch(
        ["--model_name_or_path", str(tiny_llama_dir), "--dataset_path", str(sft_data_dir), "--output_dir", str(out),
         "--num_train_epochs", "2", "--logging_steps", "2"]
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["openchat_model_type"] == "openchat"
    tok_config = json.loads((out / "tokenizer_config.json").read_text())
    assert "<|end_of_turn|>" in tok_config["chat_template"]
    assert "{%- generation" not in tok_config["chat_template"]  # TGI's minijinja rejects {% generation %}
    assert "{%- generation" in (out / "chat_template.jinja").read_text()
    assert json.loads((out / "openchat_hf.json").read_text())["model_type"] == "openchat"
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out)
    eot = tokenizer.convert_tokens_to_ids("<|end_of_turn|>")
    generation = json.loads((out / "generation_config.json").read_text())
    assert isinstance(generation["eos_token_id"], list) and eot in generation["eos_token_id"]
    card = (out / "README.md").read_text()
    assert str(tiny_llama_dir) in card and str(sft_data_dir) in card and "config_cpu.yaml" in card
    assert '"learning_rate": 0.001' in card
    state = json.loads((out / "trainer_state.json").read_text())
    logs = [h for h in state["log_history"] if "loss" in h]
    assert logs and all("train_tokens_per_second" in h and "supervised_tokens_per_step" in h for h in logs)
    assert logs[-1]["loss"] < logs[0]["loss"]
    assert "patching the model on the fly" in result.stdout + result.stderr
    # the checkpoint chats with the training template and its EOT is a stop token
    messages = [{"role": "user", "content": "Hi"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt == "<s>Human: Hi<|end_of_turn|>Assistant:"


def _losses(out: Path) -> dict[int, float]:
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    return {h["step"]: h["loss"] for h in history if "loss" in h}


@pytest.mark.slow
def test_kill_and_resume_reaches_the_same_state(patched_tiny, sft_data_dir, tmp_path):
    """SIGKILL a multipack run after a checkpoint, resume with --resume_from_checkpoint last: same steps, weights."""
    import signal
    import time

    import torch
    from safetensors.torch import load_file

    common = ["--model_name_or_path", str(patched_tiny), "--dataset_path", str(sft_data_dir),
              "--num_train_epochs", "3", "--max_tokens_per_batch", "512", "--logging_steps", "1",
              "--save_strategy", "steps", "--save_steps", "4", "--save_total_limit", "10"]  # fmt: skip
    reference = tmp_path / "reference"
    result = launch([*common, "--output_dir", str(reference)])
    assert result.returncode == 0, result.stderr[-3000:]
    total_steps = json.loads((reference / "trainer_state.json").read_text())["global_step"]
    assert total_steps > 12  # several epochs of multipack batches, so the kill lands mid-run

    resumed = tmp_path / "resumed"
    cmd = [ACCELERATE, "launch", "--num_processes", "1", "--cpu", "--mixed_precision", "no", str(SFT_SCRIPT),
           "--config", str(TINY_RECIPE), *common, "--output_dir", str(resumed)]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while not (resumed / "checkpoint-12").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert (resumed / "checkpoint-8" / "trainer_state.json").exists()
    assert not (resumed / "model.safetensors").exists(), "the run finished before it was killed"
    for checkpoint in resumed.glob("checkpoint-*"):  # a checkpoint being written at the kill may be partial
        if int(checkpoint.name.split("-")[1]) > 8:
            import shutil

            shutil.rmtree(checkpoint)

    result = launch([*common, "--output_dir", str(resumed), "--resume_from_checkpoint", "last"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((resumed / "trainer_state.json").read_text())["global_step"] == total_steps
    ref_losses, new_losses = _losses(reference), _losses(resumed)
    assert sorted(new_losses) == sorted(ref_losses)
    assert [new_losses[s] for s in sorted(new_losses)] == pytest.approx(
        [ref_losses[s] for s in sorted(ref_losses)], rel=1e-4
    )
    ref_weights, new_weights = load_file(reference / "model.safetensors"), load_file(resumed / "model.safetensors")
    for name, tensor in ref_weights.items():
        torch.testing.assert_close(new_weights[name], tensor, atol=1e-5, rtol=1e-4, msg=name)


def test_push_to_hub_uploads_the_checkpoint_to_a_fake_hub(patched_tiny, sft_data_dir, tmp_path):
    from fake_hub import FakeHub

    out = tmp_path / "pushed"
    with FakeHub() as hub:
        result = launch(
            ["--model_name_or_path", str(patched_tiny), "--dataset_path", str(sft_data_dir), "--output_dir", str(out),
             "--max_steps", "2", "--save_strategy", "no", "--push_to_hub", "true",
             "--hub_model_id", f"{hub.user}/tiny-openchat", "--hub_token", hub.token],
            env=hub.env(),
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        files = hub.files(f"{hub.user}/tiny-openchat")
        pushes = [c for c in hub.commits(f"{hub.user}/tiny-openchat") if "model.safetensors" in c["paths"]]
    assert len(pushes) == 1  # pushed once, on the final save
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                 "generation_config.json", "README.md"):  # fmt: skip
        assert files[name] == (out / name).read_bytes(), name
    assert b"<|end_of_turn|>" in files["tokenizer_config.json"]
    assert b"openchat-hf" in files["README.md"] and str(sft_data_dir).encode() in files["README.md"]
