"""2 CPU processes through `accelerate launch` with each accelerate_configs file (gloo; ACCELERATE_USE_CPU=true).

The global-batch loss makes a 2-rank run step for step equal to a 1-rank run with 2 gradient-accumulation
micro-batches on the same conversations; the weights after a few optimizer steps must agree.
"""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file
from test_recipe_e2e import launch
from training_helpers import REPO_ROOT

CONFIGS = REPO_ROOT / "accelerate_configs"
COMMON = [
    "--max_steps", "3", "--per_device_train_batch_size", "4", "--train_sampling_strategy", "sequential",
    "--learning_rate", "1e-3", "--warmup_steps", "0", "--lr_scheduler_type", "constant", "--logging_steps", "1",
    "--save_strategy", "no", "--eval_strategy", "no", "--use_cpu", "false",
]  # fmt: skip


def run(tmp_path, name, patched_tiny, sft_data_dir, *, num_processes, config_file=None, extra=()):
    out = tmp_path / name
    args = ["--model_name_or_path", str(patched_tiny), "--dataset_path", str(sft_data_dir), "--output_dir", str(out)]
    result = launch([*args, *COMMON, "--max_tokens_per_batch", "null", *extra], num_processes=num_processes,
                    config_file=config_file)  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    card = (out / "README.md").read_text()
    world = int(re.search(r'"world_size": (\d+)', card).group(1))
    kind = re.search(r'"distributed_type": "(\w+)"', card).group(1)
    losses = [h["loss"] for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    return (world, kind), load_file(out / "model.safetensors"), losses


@pytest.fixture(scope="module")
def single_process_reference(tmp_path_factory, patched_tiny, sft_data_dir):
    """One process, 2 gradient-accumulation micro-batches of 4 conversations per optimizer step."""
    tmp = tmp_path_factory.mktemp("ref")
    return run(
        tmp, "single", patched_tiny, sft_data_dir, num_processes=1, extra=["--gradient_accumulation_steps", "2"]
    )


def assert_same_training(reference, other, atol=2e-5):
    _, ref_weights, ref_losses = reference
    _, weights, losses = other
    assert losses == pytest.approx(ref_losses, rel=1e-4)
    changed = False
    for name, tensor in ref_weights.items():
        torch.testing.assert_close(weights[name], tensor, atol=atol, rtol=1e-4, msg=name)
        changed = changed or not torch.equal(tensor, weights[name])
    return changed


def test_ddp_two_ranks_equal_one_rank_with_grad_accumulation(
    single_process_reference, patched_tiny, sft_data_dir, tmp_path
):
    run_info, weights, losses = run(
        tmp_path, "ddp", patched_tiny, sft_data_dir, num_processes=2, config_file=str(CONFIGS / "ddp.yaml")
    )
    assert run_info == (2, "MULTI_CPU")  # trainer.args.world_size == 2, DDP over gloo
    assert single_process_reference[0] == (1, "NO")
    assert_same_training(single_process_reference, (run_info, weights, losses))
    # and the run really trained: weights moved from the patched base
    base = load_file(patched_tiny / "model.safetensors")
    assert any(not torch.allclose(base[k], weights[k]) for k in base)


@pytest.mark.slow
@pytest.mark.parametrize("config", ["zero2.yaml", "fsdp.yaml"])
def test_deepspeed_and_fsdp_configs_launch_on_two_cpu_processes(
    single_process_reference, patched_tiny, sft_data_dir, tmp_path, config
):
    """On CPU, accelerate 1.15 launches these configs but trains with DDP (see docs/training.md)."""
    run_info, weights, losses = run(
        tmp_path, config.split(".")[0], patched_tiny, sft_data_dir, num_processes=2, config_file=str(CONFIGS / config)
    )
    assert run_info == (2, "MULTI_CPU")
    assert_same_training(single_process_reference, (run_info, weights, losses))


@pytest.mark.parametrize(
    "config, kind, key, value",
    [
        ("ddp.yaml", "MULTI_GPU", None, None),
        ("zero2.yaml", "DEEPSPEED", "zero_stage", 2),
        ("zero3.yaml", "DEEPSPEED", "zero_stage", 3),
        ("fsdp.yaml", "FSDP", "fsdp_version", 2),
    ],
)
def test_accelerate_configs_parse(config, kind, key, value):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DeepSpeedPlugin

    cfg = load_config_from_file(str(CONFIGS / config))
    assert cfg.distributed_type.value == kind and cfg.num_machines == 1 and cfg.mixed_precision == "bf16"
    if kind == "DEEPSPEED":
        assert cfg.deepspeed_config[key] == value
        plugin = DeepSpeedPlugin(zero_stage=cfg.deepspeed_config["zero_stage"], gradient_accumulation_steps=4)
        assert plugin.deepspeed_config["zero_optimization"]["stage"] == value
    elif kind == "FSDP":
        assert cfg.fsdp_config[key] == value
        assert cfg.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # a plain transformers folder on save


@pytest.mark.slow
def test_two_machines_of_one_process_equal_one_process(single_process_reference, patched_tiny, sft_data_dir, tmp_path):
    """`openchat-hf train --accelerate-config multi_node/ddp`: two accelerate "machines" (ranks 0 and 1 on 127.0.0.1),
    one CPU process each, train like one process with the same global batch (2 x 4 = 1 x 4 x 2 accumulation)."""
    import os
    import subprocess
    import sys

    from test_recipe_e2e import _free_port
    from training_helpers import TINY_RECIPE

    out, port = tmp_path / "multinode", str(_free_port())
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    nodes = []
    for rank in (0, 1):
        cmd = [sys.executable, "-m", "openchat_hf.cli", "train", "--accelerate-config", "multi_node/ddp",
               "--num_machines", "2", "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1",
               "--main_process_port", port, "--num_processes", "2", "--mixed_precision", "no",
               "--config", str(TINY_RECIPE), "--model_name_or_path", str(patched_tiny),
               "--dataset_path", str(sft_data_dir), "--output_dir", str(out), *COMMON,
               "--max_tokens_per_batch", "null"]  # fmt: skip
        nodes.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        logs = [node.communicate(timeout=900)[0] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(log[-3000:] for log in logs)
    card = (out / "README.md").read_text()
    assert re.search(r'"world_size": (\d+)', card).group(1) == "2"
    assert re.search(r'"distributed_type": "(\w+)"', card).group(1) == "MULTI_CPU"
    losses = [h["loss"] for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert_same_training(single_process_reference, (None, load_file(out / "model.safetensors"), losses))


@pytest.mark.parametrize("config, kind", [("ddp", "MULTI_GPU"), ("zero3", "DEEPSPEED"), ("fsdp", "FSDP")])
def test_multi_node_configs_parse(config, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(CONFIGS / "multi_node" / f"{config}.yaml"))
    assert cfg.distributed_type.value == kind and cfg.num_machines == 2 and cfg.num_processes == 16
    assert cfg.machine_rank == 0 and cfg.main_process_ip and cfg.main_process_port == 29500
