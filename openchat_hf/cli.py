"""The ``openchat-hf`` command. Each package area adds its own subcommands through ``add_subcommands(subparsers)``.

Subcommand modules import their heavy dependencies inside the command functions, so ``openchat-hf --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from openchat_hf import __version__
from openchat_hf.errors import OpenChatError

# Modules that register subcommands, in the order `--help` lists them.
COMMAND_MODULES = (
    "openchat_hf.data.cli",  # data
    "openchat_hf.modeling.cli",  # patch, export
    "openchat_hf.serving.cli",  # serve
    "openchat_hf.evaluation.cli",  # eval
    "openchat_hf.visualization.cli",  # visualize
    "openchat_hf.demo",  # demo
    "openchat_hf.assets",  # assets
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openchat-hf",
        description="OpenChat on the Hugging Face stack: data, patch, train, export, serve, evaluate, visualize.",
    )
    parser.add_argument("--version", action="version", version=f"openchat-hf {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--model-type-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE (a dotted name or a .py file) that registers model types; repeatable "
        "(installed packages can also register them under the entry point group openchat_hf.model_types)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_subcommands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        if args.model_type_module:
            from openchat_hf.model_types import add_model_type_modules

            add_model_type_modules(args.model_type_module)
        return int(args.func(args) or 0)
    except OpenChatError as err:
        print(f"openchat-hf {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"openchat-hf {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
