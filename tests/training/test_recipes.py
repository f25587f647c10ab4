"""The published recipes parse with TrlParser and carry OpenChat v1's hyperparameters."""

from __future__ import annotations

import pytest
from training_helpers import REPO_ROOT
from trl import ModelConfig, TrlParser

from openchat_hf.model_types import get_model_type
from openchat_hf.training.config import OpenChatSFTConfig, ScriptArguments

RECIPES = REPO_ROOT / "recipes"  # links into openchat_hf/training/recipes (package data)
GPUS = 8


def parse(path, *overrides):
    parser = TrlParser((ScriptArguments, OpenChatSFTConfig, ModelConfig))
    return parser.parse_args_and_config(args=["--config", str(path), *overrides])


@pytest.mark.parametrize(
    "recipe, model_type",
    [
        ("openchat/sft/config_13b.yaml", "openchat"),
        ("openchat_8192/sft/config_13b.yaml", "openchat_8192"),
        ("opencoderplus/sft/config_15b.yaml", "opencoder"),
    ],
)
def test_full_recipes_have_openchat_v1_hyperparameters(recipe, model_type):
    script, args, model = parse(RECIPES / recipe, "--use_cpu", "true")  # bf16 needs a GPU or use_cpu to validate
    assert args.model_type == model_type and get_model_type(model_type)
    # multipack (the fastest mode measured): 128 conversations of 1,024 tokens per global step on average
    assert args.max_tokens_per_batch * args.gradient_accumulation_steps * GPUS == 128 * 1024
    assert (args.learning_rate, args.lr_scheduler_type.value, args.num_train_epochs) == (2e-5, "cosine", 5)
    assert (args.warmup_steps, args.weight_decay, args.bf16) == (0.03, 0.0, True)
    assert args.padding_free and args.train_sampling_strategy == "random"  # multipack shuffles itself
    assert args.max_length is None and args.remove_unused_columns is False
    assert args.dataset_kwargs["skip_prepare_dataset"] is True
    assert script.dataset_path.endswith(model_type) and model.dtype == "bfloat16"


def test_cli_overrides_the_yaml():
    _, args, model = parse(
        RECIPES / "tiny/sft/config_cpu.yaml", "--learning_rate", "3e-4", "--model_name_or_path", "x"
    )
    assert args.learning_rate == 3e-4 and model.model_name_or_path == "x"
    assert args.max_tokens_per_batch == 2048 and args.use_cpu and not args.bf16


def test_qlora_recipe():
    _, args, model = parse(RECIPES / "openchat/sft/config_13b_qlora.yaml", "--use_cpu", "true")
    assert model.use_peft and model.load_in_4bit and model.lora_r == 64
    assert model.lora_target_modules in ("all-linear", ["all-linear"])
    assert args.max_tokens_per_batch * args.gradient_accumulation_steps * GPUS == 128 * 1024


def test_packing_budget_needs_padding_free():
    from openchat_hf.training.errors import TrainingError

    with pytest.raises(TrainingError, match="padding_free"):
        OpenChatSFTConfig(output_dir="x", padding_free=False, max_tokens_per_batch=1024, use_cpu=True)


def test_recipes_and_accelerate_configs_are_package_data():
    from openchat_hf.training.errors import TrainingError
    from openchat_hf.training.resources import (
        ACCELERATE_CONFIGS_DIR,
        RECIPES_DIR,
        accelerate_config_path,
        list_recipes,
        recipe_path,
    )

    assert RECIPES_DIR.parent.name == "training" and "tiny/sft/config_cpu.yaml" in list_recipes()
    assert recipe_path("recipes/tiny/sft/config_cpu.yaml").resolve() == RECIPES_DIR / "tiny/sft/config_cpu.yaml"
    assert (RECIPES / "tiny/sft/config_cpu.yaml").resolve() == (RECIPES_DIR / "tiny/sft/config_cpu.yaml").resolve()
    assert accelerate_config_path("multi_node/zero3") == ACCELERATE_CONFIGS_DIR / "multi_node" / "zero3.yaml"
    with pytest.raises(TrainingError, match="packaged recipe"):
        recipe_path("nope.yaml")


def test_train_splits_accelerate_options_from_recipe_options():
    from openchat_hf.training.cli import split_launch_args
    from openchat_hf.training.resources import ACCELERATE_CONFIGS_DIR, RECIPES_DIR

    launch, training = split_launch_args(
        ["--config", "tiny/sft/config_cpu.yaml", "--accelerate-config", "ddp", "--num_processes", "2",
         "--learning_rate", "3e-4", "--main_process_port", "29511"]
    )  # fmt: skip
    assert launch == ["--config_file", str(ACCELERATE_CONFIGS_DIR / "ddp.yaml"), "--num_processes", "2",
                      "--main_process_port", "29511"]  # fmt: skip
    assert training == ["--config", str(RECIPES_DIR / "tiny/sft/config_cpu.yaml"), "--learning_rate", "3e-4"]
    assert split_launch_args(["--config", "tiny/sft/config_cpu.yaml"])[0] == []  # in-process
