"""`openchat-hf visualize` (placeholder until the visualization area lands)."""


def add_subcommands(subparsers) -> None:
    subparsers.add_parser("visualize", help="conversation-embedding explorer and evaluation-results pages")
