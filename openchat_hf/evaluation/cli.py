"""`openchat-hf eval` (placeholder until the evaluation area lands)."""


def add_subcommands(subparsers) -> None:
    subparsers.add_parser("eval", help="Vicuna-bench / MT-bench evaluation")
