"""``openchat-hf data run INPUT OUTPUT`` and ``openchat-hf data push OUTPUT user/name``."""

from __future__ import annotations

import argparse
import sys


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
            "OUTPUT/report.json + report.md, and OUTPUT/dropped.jsonl (one line per dropped record). Without "
            "--tokenizer only the clean dataset and the report are written. Exit code 0 when conversations were "
            "kept (and every model type has training data), 1 when the run ended with nothing to train on (the "
            "report says why), 2 for bad input or options (nothing written)."
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
        "--max-record-mb",
        type=float,
        default=16.0,
        help="drop a page / JSON record larger than this many MB as too_large before cleaning (default 16; 0: no limit)",
    )
    run.add_argument(
        "--decontaminate-against",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="more benchmark prompts (JSONL / JSON: AlpacaEval, Arena-Hard, ...) besides the bundled Vicuna-bench and "
        "MT-bench ones",
    )
    run.add_argument(
        "--decontaminate-benchmarks",
        type=lambda v: [b.strip() for b in v.split(",") if b.strip()],
        default="vicuna_bench,mt_bench",
        metavar="NAMES",
        help="bundled benchmarks to decontaminate against, comma-separated (default: vicuna_bench,mt_bench; "
        "'none' for only --decontaminate-against files)",
    )
    run.add_argument(
        "--no-decontaminate", action="store_true", help="don't drop conversations that contain benchmark prompts"
    )
    run.add_argument(
        "--near-dedup-threshold",
        type=float,
        default=0.5,
        help="MinHash Jaccard similarity of two transcripts (word 5-grams) from which they are near-duplicates "
        "(default 0.5)",
    )
    run.add_argument("--no-near-dedup", action="store_true", help="don't drop near-duplicate conversations")
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
    push.add_argument(
        "--license", default=None, help="license id of the dataset card (default: other; see the card's note)"
    )
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
        max_record_mb=args.max_record_mb or None,
        decontaminate=not args.no_decontaminate,
        decontaminate_against=args.decontaminate_against,
        decontaminate_benchmarks=[b for b in args.decontaminate_benchmarks if b != "none"],
        near_dedup=not args.no_near_dedup,
        near_dedup_threshold=args.near_dedup_threshold,
        tokenization=args.tokenization,
    )
    report = run_pipeline(args.input, args.output, config)
    print(to_markdown(report))
    print(f"Wrote {args.output} (report: {args.output}/report.json, drops: {args.output}/dropped.jsonl)")
    empty = report["kept"] == 0 or any(mt["train"] == 0 for mt in report["model_types"].values())
    if empty:
        why = [m for m in report["messages"] if m.startswith("Nothing") or "no training conversation" in m]
        print(f"openchat-hf data: error: {why[0] if why else 'nothing to train on.'}", file=sys.stderr)
    return 1 if empty else 0


def _push(args: argparse.Namespace) -> int:
    from openchat_hf.data.hub import push_dataset

    info = push_dataset(args.output, args.repo_id, private=args.private or None, license=args.license)
    print(f"Pushed {args.output} to {getattr(info, 'commit_url', None) or args.repo_id}")
    return 0
