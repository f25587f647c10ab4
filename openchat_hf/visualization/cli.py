"""``openchat-hf visualize embeddings DATASET OUT``, ``visualize eval REPORT_DIR... OUT`` and
``visualize training CHECKPOINT_DIR OUT``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _clusters(value: str) -> int | None:
    if value == "auto":
        return None
    try:
        k = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of clusters or 'auto', got {value!r}") from None
    if k < 1:
        raise argparse.ArgumentTypeError("the number of clusters must be at least 1")
    return k


def _k_range(value: str) -> tuple[int, int]:
    try:
        low, high = (int(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX (e.g. 2,12), got {value!r}") from None
    return low, high


def add_subcommands(subparsers) -> None:
    parser = subparsers.add_parser(
        "visualize", help="web pages: conversation explorer, evaluation results, training run"
    )
    commands = parser.add_subparsers(dest="visualize_command", metavar="PAGE", required=True)

    emb = commands.add_parser(
        "embeddings",
        help="3D map of conversations (embeddings -> UMAP -> K-Means) as a self-contained web page",
        description="Embed conversations, project them to 3D with UMAP, colour them by K-Means cluster and write "
        "OUT/MODEL_TYPE.visualizer.json plus OUT/MODEL_TYPE.embeddings.html.",
    )
    emb.add_argument("dataset", help="clean-conversations folder (data pipeline OUT/clean), legacy "
                     "MODEL_TYPE.*.text.json file, or Hub dataset id")  # fmt: skip
    emb.add_argument("out", type=Path, help="output folder")
    emb.add_argument("--model-type", default="openchat", help="conversation template (default: openchat)")
    emb.add_argument("--split", default="train", help="split of a Hub dataset (default: train)")
    emb.add_argument("--embeddings", choices=("local", "openai"), default="local",
                     help="local sentence-transformers model (offline, default) or an OpenAI-compatible endpoint")  # fmt: skip
    emb.add_argument("--embeddings-model", default=None,
                     help="local: model folder (default: bundled all-MiniLM-L6-v2); openai: model name "
                     "(default: text-embedding-3-small)")  # fmt: skip
    emb.add_argument(
        "--embeddings-base-url", default=None, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1"
    )
    emb.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    emb.add_argument("--long-text", choices=("chunk", "truncate"), default="chunk",
                     help="texts longer than the model's window: average the windows' embeddings (chunk, default) "
                     "or keep the first window (truncate)")  # fmt: skip
    emb.add_argument("--batch-size", type=int, default=64, help="windows per forward pass / request")
    emb.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="embedding cache folder (default: ~/.cache/openchat_hf/embeddings)",
    )
    emb.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    emb.add_argument("--clusters", type=_clusters, default=None, metavar="K|auto",
                     help="number of K-Means clusters, or auto (silhouette over --k-range; default)")  # fmt: skip
    emb.add_argument(
        "--k-range", type=_k_range, default=(2, 12), metavar="MIN,MAX", help="k tried by auto (default 2,12)"
    )
    emb.add_argument(
        "--max-points", type=int, default=None, help="visualize a seeded random sample of N conversations"
    )
    emb.add_argument("--seed", type=int, default=42)
    emb.set_defaults(func=run_embeddings)

    ev = commands.add_parser(
        "eval",
        help="evaluation-results page from one or more `openchat-hf eval report` folders",
        description="Write a self-contained page with relative scores, raw and length-controlled win rates, "
        "win / tie / loss, judging-order agreement, categories, MT-bench grades and every question. Several report "
        "folders (runs) are compared on one page.",
    )
    ev.add_argument("report_dirs", nargs="+", type=Path, metavar="REPORT_DIR",
                    help="folder holding report.json (or the report.json file); give several to compare runs")  # fmt: skip
    ev.add_argument("out", type=Path, help="output folder (writes OUT/eval.html) or .html file")
    ev.add_argument("--label", action="append", default=None, metavar="NAME",
                    help="name of a run, once per REPORT_DIR in order (default: each report folder's name)")  # fmt: skip
    ev.set_defaults(func=run_eval)

    tr = commands.add_parser(
        "training",
        help="training-run page: loss, tokens/s and supervised share per step, beside the data report",
        description="Write a self-contained page from a training run's trainer_state.json (the folder's own, else "
        "its newest checkpoint-N) and, with --data-report, the data pipeline's report.json and dropped.jsonl.",
    )
    tr.add_argument("checkpoint_dir", type=Path, help="the run's --output_dir (or one checkpoint-N folder)")
    tr.add_argument("out", type=Path, help="output folder (writes OUT/training.html) or .html file")
    tr.add_argument("--data-report", type=Path, default=None, metavar="DATA_DIR",
                    help="the data pipeline's output folder (or its report.json) the run trained on")  # fmt: skip
    tr.set_defaults(func=run_training)


def run_embeddings(args: argparse.Namespace) -> int:
    from openchat_hf.visualization.embedding import EmbeddingConfig, default_cache_dir
    from openchat_hf.visualization.embeddings_page import EmbeddingsPageConfig, visualize_embeddings
    from openchat_hf.visualization.projection import ProjectionConfig

    config = EmbeddingsPageConfig(
        model_type=args.model_type,
        embedding=EmbeddingConfig(
            backend=args.embeddings,
            model=args.embeddings_model,
            base_url=args.embeddings_base_url,
            api_key_env=args.api_key_env,
            long_text=args.long_text,
            batch_size=args.batch_size,
            cache_dir=None if args.no_cache else (args.cache_dir or default_cache_dir()),
        ),
        projection=ProjectionConfig(clusters=args.clusters, k_range=args.k_range, seed=args.seed),
        max_points=args.max_points,
        split=args.split,
    )
    result = visualize_embeddings(args.dataset, args.out, config)
    print(f"{result.num_points} conversations, {result.k} clusters")
    print(f"wrote {result.visualizer_json}")
    print(f"wrote {result.page}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from openchat_hf.visualization.errors import VisualizationError
    from openchat_hf.visualization.eval_page import build_eval_page

    if args.label is not None and len(args.label) != len(args.report_dirs):
        raise VisualizationError(
            f"{len(args.label)} --label for {len(args.report_dirs)} report folders: give one each."
        )
    page = build_eval_page(args.report_dirs, args.out, labels=args.label)
    print(f"wrote {page}")
    return 0


def run_training(args: argparse.Namespace) -> int:
    from openchat_hf.visualization.training_page import build_training_page

    page = build_training_page(args.checkpoint_dir, args.out, data_report=args.data_report)
    print(f"wrote {page}")
    return 0
