#!/usr/bin/env python
"""Supervised fine-tuning of an OpenChat model with TRL (alignment-handbook style).

    accelerate launch [--config_file accelerate_configs/zero2.yaml] recipes/sft.py \
        --config recipes/openchat/sft/config_13b.yaml [--dataset_path OUT/openchat] [--output_dir DIR] [--key value]

The recipe YAML fills ``ScriptArguments``, ``OpenChatSFTConfig`` (TRL's ``SFTConfig`` + OpenChat options) and TRL's
``ModelConfig``; command-line flags override it. A base model without the ``<|end_of_turn|>`` token is patched on the
fly. Training resumes from ``--resume_from_checkpoint PATH`` (or ``last`` for the newest checkpoint in output_dir).
The saved model carries the chat template, the EOT token, ``generation_config.eos_token_id`` with EOT and
``config.openchat_model_type``, plus a model card; ``--push_to_hub`` uploads it.
"""

from __future__ import annotations

import logging
import os
import sys

import datasets
import transformers
from transformers import set_seed
from transformers.trainer_utils import get_last_checkpoint
from trl import ModelConfig, TrlParser
from trl.trainer.utils import get_quantization_config

from openchat_hf.folder_info import read_folder_info
from openchat_hf.templates import eot_token_id
from openchat_hf.training.config import OpenChatSFTConfig, ScriptArguments
from openchat_hf.training.data import load_sft_datasets
from openchat_hf.training.errors import TrainingError
from openchat_hf.training.model import load_model_and_tokenizer
from openchat_hf.training.peft_utils import build_peft_config
from openchat_hf.training.trainer import OpenChatSFTTrainer

logger = logging.getLogger(__name__)


def resolve_checkpoint(training_args: OpenChatSFTConfig) -> str | None:
    """The checkpoint to resume from: an explicit path, ``last``/``true`` for the newest one in output_dir, or None."""
    requested = training_args.resume_from_checkpoint
    if requested is None or str(requested).lower() in ("false", "no", "none"):
        return None
    if str(requested).lower() in ("last", "true", "yes"):
        last = get_last_checkpoint(training_args.output_dir) if os.path.isdir(training_args.output_dir) else None
        if last is None:
            logger.warning("No checkpoint in %s: starting from scratch", training_args.output_dir)
        return last
    if not os.path.isdir(requested):
        raise TrainingError(f"--resume_from_checkpoint {requested!r} is not a checkpoint folder.")
    return requested


def main(script_args: ScriptArguments, training_args: OpenChatSFTConfig, model_args: ModelConfig) -> None:
    set_seed(training_args.seed)
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=[logging.StreamHandler(sys.stdout)]
    )
    log_level = training_args.get_process_log_level()
    for log in (logger, logging.getLogger("openchat_hf")):  # our INFO lines on the main process
        log.setLevel(logging.INFO if training_args.should_log else logging.WARNING)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.info("Script %s | Model %s | Training %s", script_args, model_args, training_args)

    if script_args.dataset_path is None:
        raise TrainingError("No data: set dataset_path in the recipe or pass --dataset_path OUT/<model_type>.")
    checkpoint = resolve_checkpoint(training_args)

    quantization_config = get_quantization_config(model_args)
    model_kwargs = {}
    if quantization_config is not None:  # QLoRA: each process loads its 4-bit copy on its own GPU
        from accelerate import PartialState

        model_kwargs = {
            "quantization_config": quantization_config,
            "device_map": {"": PartialState().local_process_index},
        }
    model, tokenizer, model_type = load_model_and_tokenizer(
        model_args.model_name_or_path,
        training_args.model_type,
        dtype=model_args.dtype,
        attn_implementation=model_args.attn_implementation,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
        **model_kwargs,
    )
    training_args.model_type = model_type
    with training_args.main_process_first(desc="dataset"):
        train_dataset, eval_dataset = load_sft_datasets(
            script_args.dataset_path,
            tokenizer,
            model_type,
            train_split=script_args.dataset_train_split,
            eval_split=script_args.dataset_test_split if training_args.eval_strategy != "no" else None,
            config_name=script_args.dataset_config,
            max_train_samples=script_args.max_train_samples,
            num_proc=training_args.dataset_num_proc,
        )
    eot_id = eot_token_id(tokenizer, model_type)  # the model type's EOT (<|eot_id|> for openchat_llama3)
    trainer = OpenChatSFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=build_peft_config(model_args, model, eot_id),
    )
    trainer.tokenization = read_folder_info(script_args.dataset_path).get("tokenization")  # recorded in checkpoints
    trainer.card_info = {
        "base_model": model_args.model_name_or_path,
        "dataset": script_args.dataset_path,
        "model_type": model_type,
        "recipe": os.environ.get("OPENCHAT_RECIPE"),
    }

    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = train_result.metrics
    metrics["train_samples"] = len(train_dataset)
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()

    # save_model writes on the main process only (gathering ZeRO-3 / FSDP shards first); with --push_to_hub it
    # also writes the model card and uploads the folder.
    trainer.model.config.use_cache = True
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process and not training_args.push_to_hub:
        trainer.create_model_card()
    trainer.accelerator.wait_for_everyone()
    logger.info("Model saved to %s%s", training_args.output_dir, " and pushed" if training_args.push_to_hub else "")

    if eval_dataset is not None:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, OpenChatSFTConfig, ModelConfig))
    if "--config" in sys.argv:
        os.environ.setdefault("OPENCHAT_RECIPE", sys.argv[sys.argv.index("--config") + 1])
    try:
        main(*parser.parse_args_and_config())
    except TrainingError as err:
        print(f"sft.py: error: {err}", file=sys.stderr)
        sys.exit(2)
