"""``openchat-hf train``: run a recipe in this process, or through ``accelerate launch`` (the way ``trl sft`` works).

    openchat-hf train --config RECIPE.yaml [--key value ...]                       # one process
    openchat-hf train --config RECIPE.yaml --accelerate-config zero3 [--num_processes 8 ...] [--key value ...]

Options the recipe's dataclasses do not know (``--num_processes``, ``--num_machines``, ``--machine_rank``,
``--main_process_ip``, ...) go to ``accelerate launch``, which then runs ``-m openchat_hf.training.sft`` with the
recipe options. ``--accelerate-config`` takes a file or a packaged config name (``ddp``, ``zero2``, ``zero3``,
``fsdp``, ``multi_node/ddp``, ...).
"""

from __future__ import annotations

import argparse
import os
import subprocess
from typing import Any

from openchat_hf.training.errors import TrainingError

SFT_MODULE = "openchat_hf.training.sft"
HELP = "fine-tune with a recipe (TRL SFT; --accelerate-config for several processes or machines)"


def add_subcommands(subparsers: Any) -> None:
    parser = subparsers.add_parser("train", help=HELP, description=__doc__, add_help=False)
    parser.set_defaults(func=run_train, accepts_extra_args=True)


def split_launch_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """``(accelerate launch args, training args)``: whatever the recipe's dataclasses do not parse is for accelerate."""
    from openchat_hf.training.sft import make_parser, resolve_config_argument

    argv, _ = resolve_config_argument(argv)
    accelerate_config = None
    if "--accelerate-config" in argv or "--accelerate_config" in argv:
        flag = "--accelerate-config" if "--accelerate-config" in argv else "--accelerate_config"
        i = argv.index(flag)
        if i + 1 >= len(argv):
            raise TrainingError(f"{flag} needs a value (a file or one of the packaged configs).")
        accelerate_config = argv[i + 1]
        argv = argv[:i] + argv[i + 2 :]
    *_, config_remaining, cli_remaining = make_parser("openchat-hf train").parse_args_and_config(
        argv, return_remaining_strings=True, separate_remaining_strings=True
    )
    launch = list(config_remaining) + list(cli_remaining)
    if accelerate_config is not None:
        from openchat_hf.training.resources import accelerate_config_path

        launch = ["--config_file", str(accelerate_config_path(accelerate_config)), *launch]
    training = _subtract_subsequence(argv, list(cli_remaining))
    return launch, training


def _subtract_subsequence(items: list[str], sub: list[str]) -> list[str]:
    rest, it = [], iter(sub)
    current = next(it, None)
    for item in items:
        if current is not None and item == current:
            current = next(it, None)
        else:
            rest.append(item)
    return rest


def run_train(args: argparse.Namespace) -> int:
    from openchat_hf.training.sft import main

    argv = list(getattr(args, "extra_args", []))
    launch, training = split_launch_args(argv)
    if not launch:
        return main(training, prog="openchat-hf train")
    if "ACCELERATE_USE_CPU" not in os.environ:
        import torch

        if not torch.cuda.is_available():  # several CPU processes need it (else each would train alone)
            os.environ["ACCELERATE_USE_CPU"] = "true"
    from accelerate.commands.launch import launch_command, launch_command_parser

    launch_args = launch_command_parser().parse_args([*launch, "-m", SFT_MODULE, *training])
    try:
        launch_command(launch_args)
    except subprocess.CalledProcessError as err:  # the training processes printed their own error
        return err.returncode or 1
    return 0
