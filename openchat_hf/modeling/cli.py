"""`openchat-hf patch` (placeholder until the modeling area lands)."""


def add_subcommands(subparsers) -> None:
    subparsers.add_parser("patch", help="add the EOT token / extend context of a base model")
