"""Push a pipeline output folder to the Hugging Face Hub as Parquet, loadable with no code.

The repository gets one Parquet folder per dataset (``clean/`` and one per model type) and a ``README.md`` whose
``configs`` metadata maps them to ``datasets`` configs: ``load_dataset("user/name")`` gives the clean conversations
(config ``default``, split ``train``); ``load_dataset("user/name", "openchat")`` the tokenized ``train`` / ``eval``
splits of a model type.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path
from typing import Any

from openchat_hf.data.errors import DataPipelineError

logger = logging.getLogger(__name__)

DEFAULT_MAX_SHARD_BYTES = 500 * 1024 * 1024


def _load(path: Path):
    import datasets

    try:
        return datasets.load_from_disk(str(path))
    except Exception as err:  # noqa: BLE001
        raise DataPipelineError(f"Cannot read the dataset in {path}: {err}. Re-run `openchat-hf data run`.") from err


def _write_split(dataset, folder: Path, split: str, max_shard_bytes: int) -> list[Path]:
    num_shards = max(1, math.ceil(dataset.data.nbytes / max_shard_bytes))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(num_shards):
        path = folder / f"{split}-{index:05d}-of-{num_shards:05d}.parquet"
        dataset.shard(num_shards=num_shards, index=index, contiguous=True).to_parquet(str(path))
        paths.append(path)
    return paths


def export_parquet(
    output_dir: str | Path, export_dir: str | Path, max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES
) -> list[Path]:
    """Write the files a push uploads (Parquet shards, ``README.md``, ``report.json``) to ``export_dir``."""
    import yaml

    output_dir, export_dir = Path(output_dir), Path(export_dir)
    report_path = output_dir / "report.json"
    if not (output_dir / "clean").is_dir() or not report_path.is_file():
        raise DataPipelineError(f"{output_dir} is not a pipeline output folder: run `openchat-hf data run` first.")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    configs: list[dict[str, Any]] = []
    files: list[Path] = []
    sources = [("default", output_dir / "clean")] + [
        (name, output_dir / name) for name in report.get("model_types", {})
    ]
    for config_name, path in sources:
        loaded = _load(path)
        splits = {"train": loaded} if config_name == "default" else dict(loaded)
        folder_name = "clean" if config_name == "default" else config_name
        data_files = []
        for split, ds in splits.items():
            if len(ds) == 0:  # an empty split (e.g. eval_ratio=0) is left out
                continue
            written = _write_split(ds, export_dir / folder_name, split, max_shard_bytes)
            files += written
            data_files.append({"split": split, "path": [p.relative_to(export_dir).as_posix() for p in written]})
        entry = {"config_name": config_name, "data_files": data_files}
        configs.append({**entry, "default": True} if config_name == "default" else entry)
    from openchat_hf.data.report import to_markdown

    card = (
        "---\n"
        + yaml.safe_dump({"configs": configs, "tags": ["openchat-hf", "sharegpt"]}, sort_keys=False)
        + "---\n\nConversations cleaned and tokenized by `openchat-hf data run`.\n\n"
        + 'Load with `datasets.load_dataset(REPO)` (clean conversations) or `load_dataset(REPO, "MODEL_TYPE")`.\n\n'
        + to_markdown(report).replace("# Data pipeline report", "## Data pipeline report")
    )
    (export_dir / "README.md").write_text(card, encoding="utf-8")
    (export_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return [export_dir / "README.md", export_dir / "report.json", *files]


def push_dataset(
    output_dir: str | Path,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload openchat-hf dataset",
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
):
    """Push a pipeline output folder to the dataset repo ``repo_id`` in one commit; return the ``CommitInfo``."""
    from huggingface_hub import CommitOperationAdd, HfApi

    from openchat_hf.hub_errors import first_line, hub_errors

    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise DataPipelineError(f"Repository id {repo_id!r} must look like 'user/name'.")
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="openchat-hf-push-") as tmp:
        files = export_parquet(output_dir, tmp, max_shard_bytes=max_shard_bytes)
        operations = [
            CommitOperationAdd(path_in_repo=f.relative_to(tmp).as_posix(), path_or_fileobj=str(f)) for f in files
        ]
        try:
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
            info = api.create_commit(
                repo_id, operations=operations, commit_message=commit_message, repo_type="dataset"
            )
        except hub_errors() as err:
            raise DataPipelineError(
                f"Pushing to the dataset repo {repo_id} failed: {first_line(err)}. Check the network, "
                "HF_TOKEN (a token with write access) and HF_HUB_OFFLINE."
            ) from err
    logger.info("Pushed %d files to https://huggingface.co/datasets/%s", len(files), repo_id)
    return info
