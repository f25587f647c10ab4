"""`openchat-hf serve` (placeholder until the serving area lands)."""


def add_subcommands(subparsers) -> None:
    subparsers.add_parser("serve", help="OpenAI-compatible server (port 18888)")
