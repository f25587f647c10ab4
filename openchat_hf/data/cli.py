"""``openchat-hf data run INPUT OUTPUT`` and ``openchat-hf data push OUTPUT user/name``."""

from __future__ import annotations

import argparse


def add_subcommands(subparsers) -> None:
    data = subparsers.add_parser(
        "data", help="ShareGPT data pipeline: run, push", description="ShareGPT data pipeline."
    )
    commands = data.add_subparsers(dest="data_command", metavar="{run,push}")

    run = commands.add_parser(
        "run",
        help="clean, filter and tokenize ShareGPT pages / JSON dumps; print the report",
        description=(
            "Read ShareGPT pages (INPUT/ShareGPT/*.html or any *.html), ShareGPT JSON dumps or clean JSON under INPUT; "
            "write OUTPUT/clean, one tokenized DatasetDict per model type, the legacy MODEL_TYPE.*.json files and "
            "OUTPUT/report.json + report.md. Without --tokenizer only the clean dataset and the report are written."
        ),
    )
    run.add_argument(
        "input", metavar="INPUT", help="folder (searched recursively) or a single .html/.json/.jsonl file"
    )
    run.add_argument("output", metavar="OUTPUT", help="output folder (created; earlier outputs are replaced)")
    run.add_argument(
        "--model-types", default="openchat", help="comma-separated model types to convert for (default: openchat)"
    )
    run.add_argument(
        "--tokenizer",
        default=None,
        help="local tokenizer folder for every model type, or TYPE=PATH,TYPE=PATH (default: none, clean only)",
    )
    run.add_argument("--num-proc", type=int, default=None, help="processes for the clean and convert steps")
    run.add_argument("--eval-ratio", type=float, default=0.01, help="share of conversations in eval (default 0.01)")
    run.add_argument("--seed", type=int, default=42, help="seed of the train/eval split (default 42)")
    run.add_argument(
        "--filter-model",
        action="append",
        default=None,
        metavar="MODEL",
        help="ShareGPT model value to keep (repeatable; default 'Model: GPT-4'; 'all' keeps every model)",
    )
    run.add_argument(
        "--blocked-words-file", default=None, help="file with one blocked word/phrase per line (default: 'openai')"
    )
    run.add_argument(
        "--overflow", choices=("truncate", "drop"), default="truncate", help="conversations longer than the context"
    )
    run.add_argument("--no-legacy", action="store_true", help="don't write the legacy MODEL_TYPE.*.json files")
    run.add_argument(
        "--tokenization",
        choices=("joint", "segment"),
        default="joint",
        help="joint: one tokenization of the rendered text (default); segment: OpenChat v1's per-segment ids",
    )
    run.set_defaults(func=_run)

    push = commands.add_parser(
        "push",
        help="push a pipeline output folder to the Hub as Parquet",
        description="Push OUTPUT to the dataset repo user/name: load_dataset('user/name') gives the clean "
        "conversations, load_dataset('user/name', 'MODEL_TYPE') the tokenized splits.",
    )
    push.add_argument("output", metavar="OUTPUT", help="folder written by `openchat-hf data run`")
    push.add_argument("repo_id", metavar="user/name", help="dataset repository id")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.set_defaults(func=_push)
    data.set_defaults(func=lambda args: data.print_help() or 2)


def _run(args: argparse.Namespace) -> int:
    from openchat_hf.data.clean import DEFAULT_BLOCKED_WORDS, read_blocked_words
    from openchat_hf.data.filter import DEFAULT_FILTER_MODELS
    from openchat_hf.data.pipeline import PipelineConfig, run_pipeline
    from openchat_hf.data.report import to_markdown

    filter_models = args.filter_model or list(DEFAULT_FILTER_MODELS)
    if any(m.lower() == "all" for m in filter_models):
        filter_models = []
    blocked = read_blocked_words(args.blocked_words_file) if args.blocked_words_file else list(DEFAULT_BLOCKED_WORDS)
    config = PipelineConfig(
        model_types=args.model_types,
        tokenizer=args.tokenizer,
        num_proc=args.num_proc,
        eval_ratio=args.eval_ratio,
        seed=args.seed,
        filter_models=filter_models,
        blocked_words=blocked,
        overflow=args.overflow,
        legacy=not args.no_legacy,
        tokenization=args.tokenization,
    )
    report = run_pipeline(args.input, args.output, config)
    print(to_markdown(report))
    print(f"Wrote {args.output} (report: {args.output}/report.json)")
    return 0


def _push(args: argparse.Namespace) -> int:
    from openchat_hf.data.hub import push_dataset

    info = push_dataset(args.output, args.repo_id, private=args.private or None)
    print(f"Pushed {args.output} to {getattr(info, 'commit_url', None) or args.repo_id}")
    return 0
