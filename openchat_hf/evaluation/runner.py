"""Entry point of ``python -m openchat_hf.evaluation.<step>``: the ``openchat-hf eval`` parser alone, one step run."""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    """``openchat-hf eval`` alone: parse ``argv`` (``STEP ARGS...``), run the step, map errors to one line."""
    from openchat_hf.errors import OpenChatError
    from openchat_hf.evaluation.cli import add_step_parsers

    parser = argparse.ArgumentParser(prog="openchat-hf eval")
    parser.add_argument("-v", "--verbose", action="store_true")
    add_step_parsers(parser.add_subparsers(dest="eval_step", metavar="STEP"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except OpenChatError as err:
        print(f"openchat-hf eval {args.eval_step}: error: {err}", file=sys.stderr)
        return 2


def run_step(step: str) -> None:
    """Run ``step`` with the command line's arguments and exit with its status."""
    sys.exit(main([step, *sys.argv[1:]]))
