"""The data pipeline: ShareGPT sources -> clean -> dedup -> filter -> convert per model type -> datasets + report."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from openchat_hf.data.clean import DEFAULT_BLOCKED_WORDS, DUPLICATE, clean_batch
from openchat_hf.data.convert import (
    CONVERT_REASONS,
    OVERFLOW_CHOICES,
    convert_batch,
    converted_schema,
    load_tokenizer,
    parse_tokenizer_spec,
    split_indices,
)
from openchat_hf.data.errors import DataPipelineError
from openchat_hf.data.filter import DEFAULT_FILTER_MODELS, MODEL_FILTERED, keep_model
from openchat_hf.data.legacy import legacy_paths, write_legacy_split
from openchat_hf.data.report import add_drops, check_report, new_report, write_report
from openchat_hf.data.sources import READ_REASONS, discover_inputs
from openchat_hf.folder_info import template_tokenization, write_folder_info
from openchat_hf.model_types import ModelTypeError, parse_model_types

logger = logging.getLogger(__name__)

CLEAN_COLUMNS = ("id", "model", "messages", "source")


@dataclass
class PipelineConfig:
    """Options of :func:`run_pipeline` (the CLI's flags).

    Attributes:
        model_types: model types to convert for (names or a comma-separated string).
        tokenizer: a local tokenizer folder for every model type, ``{model_type: folder}``, or ``TYPE=PATH,...``.
            ``None`` writes only the clean dataset and the report.
        num_proc: processes for the clean and convert steps (``None``: one).
        eval_ratio: share of conversations in the ``eval`` split (the same conversations for every model type).
        seed: seed of the train / eval split.
        filter_models: ShareGPT ``model`` values to keep; empty keeps all.
        blocked_words: words / phrases that drop a conversation (word-aware, case-insensitive).
        overflow: ``"truncate"`` conversations longer than the model type's context, or ``"drop"`` them.
        legacy: also write OpenChat v1's ``MODEL_TYPE.SPLIT.json`` / ``.text.json`` files.
        tokenization: ``"joint"`` (one tokenization of the rendered text) or ``"segment"`` (OpenChat v1's ids).
        batch_size: rows per ``datasets.map`` batch.
    """

    model_types: Sequence[str] | str = ("openchat",)
    tokenizer: str | dict[str, str] | None = None
    num_proc: int | None = None
    eval_ratio: float = 0.01
    seed: int = 42
    filter_models: Sequence[str] = DEFAULT_FILTER_MODELS
    blocked_words: Sequence[str] = field(default_factory=lambda: list(DEFAULT_BLOCKED_WORDS))
    overflow: str = "truncate"
    legacy: bool = True
    tokenization: str = "joint"
    batch_size: int = 256

    def __post_init__(self) -> None:
        try:
            self.model_types = [mt.name for mt in parse_model_types(self.model_types)]
        except ModelTypeError as err:
            raise DataPipelineError(str(err)) from None
        if self.tokenization not in ("joint", "segment"):
            raise DataPipelineError(f"tokenization must be 'joint' or 'segment', got {self.tokenization!r}.")
        if self.overflow not in OVERFLOW_CHOICES:
            raise DataPipelineError(f"overflow must be one of {OVERFLOW_CHOICES}, got {self.overflow!r}.")
        if not 0 <= self.eval_ratio < 1:
            raise DataPipelineError(f"eval_ratio must be in [0, 1), got {self.eval_ratio}.")
        if self.num_proc is not None and self.num_proc < 1:
            raise DataPipelineError(f"num_proc must be >= 1, got {self.num_proc}.")
        self.filter_models = [m for m in self.filter_models if m]
        self.blocked_words = list(self.blocked_words)


def _output_paths(output_dir: Path, model_types: Sequence[str]) -> list[Path]:
    paths = [output_dir / "clean", output_dir / "report.json", output_dir / "report.md"]
    for name in model_types:
        paths.append(output_dir / name)
        for split in ("train", "eval"):
            paths.extend(legacy_paths(output_dir, name, split))
    return paths


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def run_pipeline(
    input_path: str | Path, output_dir: str | Path, config: PipelineConfig | None = None
) -> dict[str, Any]:
    """Run the whole pipeline; return the report (also written to ``output_dir/report.json`` and ``report.md``).

    Every input record is either kept or dropped with a reason; the report's counts always add up.
    """
    config = config or PipelineConfig()
    started = time.perf_counter()
    output_dir = Path(output_dir)
    tokenizer_paths = parse_tokenizer_spec(config.tokenizer, config.model_types)
    for name, path in tokenizer_paths.items():  # load and check every tokenizer before any work
        load_tokenizer(path, name)
    files = discover_inputs(input_path, exclude=output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise DataPipelineError(f"Output {output_dir} exists and is not a folder.")
    output_dir.mkdir(parents=True, exist_ok=True)
    for path in _output_paths(output_dir, config.model_types):
        _remove(path)

    report = new_report(str(input_path), str(output_dir), len(files), _jsonable(config))
    num_proc = config.num_proc if config.num_proc and config.num_proc > 1 else None
    cache_dir = Path(tempfile.mkdtemp(prefix=".cache-", dir=output_dir))
    try:
        from openchat_hf.data.builder import ShareGPTBuilder

        # 1. read: the builder streams every record (with its read error, if any) into Arrow files.
        root = Path(input_path) if Path(input_path).is_dir() else Path(input_path).parent
        builder = ShareGPTBuilder(
            cache_dir=str(cache_dir / "builder"),
            config_name="raw",
            files=[str(f) for f in files],
            root=str(root),
            stage="raw",
        )
        builder.download_and_prepare(num_proc=num_proc if num_proc and len(files) > 1 else None)
        raw = builder.as_dataset("train")
        report["inputs"] = len(raw)
        logger.info("Read %d records from %d files", len(raw), len(files))

        # 2. clean (per record, parallel).
        cleaned = raw.map(
            clean_batch,
            batched=True,
            batch_size=config.batch_size,
            num_proc=num_proc,
            fn_kwargs={"blocked_words": tuple(config.blocked_words)},
            remove_columns=["turns", "clean", "error"],
            new_fingerprint=f"clean-{_fingerprint(config)}",
            desc="clean",
        )

        # 3. dedup (first occurrence wins, in input order) and 4. filter by model: one sequential pass.
        seen: set[str] = set()
        drops = {step: Counter() for step in ("read", "clean", "dedup", "filter")}
        kept_indices: list[int] = []
        index = 0
        columns = cleaned.select_columns(["reason", "hash", "model"])
        with tqdm(total=len(cleaned), desc="dedup + filter", unit="conv") as bar:
            for batch in columns.iter(batch_size=10_000):
                for reason, digest, model in zip(batch["reason"], batch["hash"], batch["model"]):
                    if reason:
                        drops["read" if reason in READ_REASONS else "clean"][reason] += 1
                    elif digest in seen:
                        drops["dedup"][DUPLICATE] += 1
                    else:
                        seen.add(digest)
                        if keep_model(model, config.filter_models):
                            kept_indices.append(index)
                        else:
                            drops["filter"][MODEL_FILTERED] += 1
                    index += 1
                bar.update(len(batch["reason"]))
        for step, counter in drops.items():
            add_drops(report, step, counter)
        report["kept"] = len(kept_indices)

        clean = cleaned.select(kept_indices).select_columns(list(CLEAN_COLUMNS))
        clean.save_to_disk(str(output_dir / "clean"), num_shards=1 if len(clean) == 0 else None)
        logger.info("Kept %d of %d conversations -> %s", len(clean), report["inputs"], output_dir / "clean")

        # 5. convert per model type.
        train_idx, eval_idx = split_indices(len(clean), config.eval_ratio, config.seed)
        if not tokenizer_paths:
            report["note"] = "No --tokenizer given: only the clean dataset and this report were written."
        for name in config.model_types if tokenizer_paths else []:
            report["model_types"][name] = _convert(
                clean, name, tokenizer_paths[name], train_idx, eval_idx, output_dir, config, num_proc
            )
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    report["seconds"] = round(time.perf_counter() - started, 3)
    check_report(report)
    write_report(report, output_dir)
    return report


def _convert(clean, name, tokenizer_path, train_idx, eval_idx, output_dir, config, num_proc) -> dict[str, Any]:
    import datasets

    from openchat_hf.model_types import get_model_type
    from openchat_hf.templates import setup_tokenizer

    model_type = get_model_type(name)
    tokenizer = load_tokenizer(tokenizer_path, name)
    template = setup_tokenizer(tokenizer, model_type, config.tokenization)
    converted = clean.map(
        convert_batch,
        batched=True,
        batch_size=config.batch_size,
        num_proc=num_proc,
        fn_kwargs={
            "template": template,
            "max_length": model_type.max_length,
            "overflow": config.overflow,
            "with_text": config.legacy,
        },
        remove_columns=list(CLEAN_COLUMNS),
        features=datasets.Features.from_arrow_schema(converted_schema()),
        new_fingerprint=f"convert-{name}-{_fingerprint(config)}",
        desc=f"convert {name}",
    )
    stats = converted.select_columns(["reason", "truncated", "neutralized", "length"]).to_dict()
    reasons = stats["reason"]
    dropped = Counter(r for r in reasons if r)
    splits = {}
    for split, indices in (("train", train_idx), ("eval", eval_idx)):
        keep = [i for i in indices if not reasons[i]]
        splits[split] = converted.select(keep)
    result = {
        "tokenizer": str(tokenizer_path),
        "max_length": model_type.max_length,
        "input": len(converted),
        "train": len(splits["train"]),
        "eval": len(splits["eval"]),
        "dropped": {r: dropped.get(r, 0) for r in CONVERT_REASONS},
        "truncated": sum(t for t, r in zip(stats["truncated"], reasons) if not r),
        "neutralized_special_tokens": sum(n for n, r in zip(stats["neutralized"], reasons) if not r),
        "tokens": {
            split: sum(stats["length"][i] for i in indices if not reasons[i])
            for split, indices in (("train", train_idx), ("eval", eval_idx))
        },
    }
    if config.legacy:
        for split, ds in splits.items():
            write_legacy_split(ds, output_dir, name, split)
    dataset_dict = datasets.DatasetDict(
        {split: ds.select_columns(["input_ids", "supervise_mask", "length"]) for split, ds in splits.items()}
    )
    # An empty split needs one explicit (empty) shard, or load_from_disk fails on it.
    dataset_dict.save_to_disk(
        str(output_dir / name), num_shards={s: 1 if len(d) == 0 else None for s, d in splits.items()}
    )
    write_folder_info(output_dir / name, model_type=name, kind="data", tokenization=template_tokenization(template))
    logger.info("%s: %d train / %d eval conversations -> %s", name, result["train"], result["eval"], output_dir / name)
    return result


def _jsonable(config: PipelineConfig) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}


def _fingerprint(config: PipelineConfig) -> str:
    import xxhash

    return xxhash.xxh3_64_hexdigest((repr(sorted(_jsonable(config).items())) + str(time.time_ns())).encode())
