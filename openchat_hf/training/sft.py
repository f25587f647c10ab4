"""The SFT entry point behind ``openchat-hf train``, ``accelerate launch -m openchat_hf.training.sft`` and
``recipes/sft.py`` (alignment-handbook's ``scripts/sft.py``, TRL's ``trl sft``).

    accelerate launch [--config_file CONFIG] -m openchat_hf.training.sft --config RECIPE.yaml [--key value ...]

The recipe YAML fills ``ScriptArguments``, ``OpenChatSFTConfig`` (TRL's ``SFTConfig`` + OpenChat options) and TRL's
``ModelConfig``; command-line flags override it. ``--config`` takes a file or a recipe shipped with the package
(``tiny/sft/config_cpu.yaml``, see :func:`openchat_hf.training.resources.recipe_path`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from openchat_hf.training.errors import TrainingError

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors", "pytorch_model.bin")


def make_parser(prog: str | None = None) -> Any:
    """TRL's ``TrlParser`` over ``(ScriptArguments, OpenChatSFTConfig, ModelConfig)``."""
    from trl import ModelConfig, TrlParser

    from openchat_hf.training.config import OpenChatSFTConfig, ScriptArguments

    parser = TrlParser((ScriptArguments, OpenChatSFTConfig, ModelConfig), prog=prog)
    return parser


def is_complete_checkpoint(folder: Path) -> bool:
    """``trainer_state.json`` (written last by the Trainer) parses and the weights (and optimizer) are there."""
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(state, dict) or "global_step" not in state:
        return False
    return any((folder / name).is_file() for name in WEIGHT_FILES)


def last_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The newest ``checkpoint-N`` of ``output_dir`` that was completely written (a run killed while saving leaves
    a partial newest one, which is skipped with a warning)."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name)))
    for _, path in reversed(found):
        if is_complete_checkpoint(path):
            return str(path)
        logger.warning("Skipping %s: incompletely written (no readable trainer_state.json or weights)", path)
    return None


def resolve_checkpoint(training_args: Any) -> str | None:
    """The checkpoint to resume from: a path, ``last``/``true`` for the newest complete one in output_dir, or None."""
    requested = training_args.resume_from_checkpoint
    if requested is None or str(requested).lower() in ("false", "no", "none"):
        return None
    if str(requested).lower() in ("last", "true", "yes"):
        last = last_complete_checkpoint(training_args.output_dir)
        if last is None:
            logger.warning("No complete checkpoint in %s: starting from scratch", training_args.output_dir)
        return last
    if not os.path.isdir(requested):
        raise TrainingError(f"--resume_from_checkpoint {requested!r} is not a checkpoint folder.")
    if not is_complete_checkpoint(Path(requested)):
        raise TrainingError(
            f"--resume_from_checkpoint {requested!r} was not completely written (no readable trainer_state.json or "
            "weights); use an earlier checkpoint or `last`."
        )
    return requested


def train(script_args: Any, training_args: Any, model_args: Any, recipe: str | None = None) -> Any:
    """Load, train, save (checkpoint contract + model card), evaluate; return the trainer."""
    import datasets
    import transformers
    from transformers import set_seed
    from trl.trainer.utils import get_quantization_config

    from openchat_hf.folder_info import read_folder_info
    from openchat_hf.templates import eot_token_id
    from openchat_hf.training.data import load_sft_datasets
    from openchat_hf.training.model import load_model_and_tokenizer, local_path_or_id
    from openchat_hf.training.peft_utils import build_peft_config
    from openchat_hf.training.trainer import OpenChatSFTTrainer

    set_seed(training_args.seed)
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
        "base_model": local_path_or_id(model_args.model_name_or_path),
        "dataset": script_args.dataset_path,
        "model_type": model_type,
        "recipe": recipe,
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
    return trainer


def resolve_config_argument(argv: list[str]) -> tuple[list[str], str | None]:
    """``argv`` with ``--config NAME`` turned into a file path (a file, else a packaged recipe); the recipe's path."""
    from openchat_hf.training.resources import recipe_path

    argv = list(argv)
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            argv[i + 1] = str(recipe_path(argv[i + 1]))
            return argv, argv[i + 1]
        if arg.startswith("--config="):
            path = str(recipe_path(arg.split("=", 1)[1]))
            argv[i] = f"--config={path}"
            return argv, path
    return argv, None


def main(argv: list[str] | None = None, prog: str = "openchat_hf.training.sft") -> int:
    """Parse ``argv`` (recipe + overrides), train; a ``TrainingError`` becomes one line on stderr and exit code 2."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=[logging.StreamHandler(sys.stdout)]
    )
    try:
        argv, recipe = resolve_config_argument(sys.argv[1:] if argv is None else argv)
        script_args, training_args, model_args = make_parser(prog).parse_args_and_config(args=argv)
        train(script_args, training_args, model_args, recipe=recipe or os.environ.get("OPENCHAT_RECIPE"))
    except TrainingError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
