"""`openchat-hf data` (placeholder until the data area lands)."""


def add_subcommands(subparsers) -> None:
    subparsers.add_parser("data", help="ShareGPT data pipeline: run, push")
