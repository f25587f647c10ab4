"""`openchat-hf demo` (placeholder until the end-to-end demo lands)."""


def add_subcommands(subparsers) -> None:
    subparsers.add_parser("demo", help="run the whole OpenChat loop on the embedded tiny default (CPU)")
