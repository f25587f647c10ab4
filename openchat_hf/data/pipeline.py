"""The data pipeline: ShareGPT sources (filtered by model as they are read) -> clean -> decontaminate -> dedup ->
near-dedup -> convert per model type -> datasets + report."""

from __future__ import annotations

import dataclasses
import json
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

from openchat_hf.data.clean import DEFAULT_BLOCKED_WORDS, DUPLICATE, clean_batch, first_user_excerpt
from openchat_hf.data.convert import (
    CONVERT_REASONS,
    CUT_MARGIN_TOKENS,
    NO_SUPERVISED_TOKENS,
    OVERFLOW_CHOICES,
    convert_batch,
    converted_schema,
    load_tokenizer,
    parse_tokenizer_spec,
    split_indices,
)
from openchat_hf.data.decontaminate import BUNDLED_BENCHMARKS, build_decontaminator, decontaminate_step
from openchat_hf.data.droplog import DROP_LOG, DropLog
from openchat_hf.data.errors import DataPipelineError
from openchat_hf.data.filter import DEFAULT_FILTER_MODELS, FILTER_REASONS
from openchat_hf.data.legacy import legacy_paths, write_legacy_split
from openchat_hf.data.near_dedup import NearDedupConfig, near_dedup_step
from openchat_hf.data.report import STEPS, check_report, drop_examples, new_report, top_drops, write_report
from openchat_hf.data.sources import READ_REASONS, discover_inputs
from openchat_hf.folder_info import template_tokenization, write_folder_info
from openchat_hf.model_types import ModelTypeError, parse_model_types

logger = logging.getLogger(__name__)

CLEAN_COLUMNS = ("id", "model", "messages", "source", "index")
DUPLICATE_IDS = "duplicate_ids.jsonl"
DEFAULT_MAX_RECORD_MB = 16.0


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
        max_record_mb: a page or JSON record larger than this (MB) is dropped as ``too_large`` before cleaning;
            ``None``: no limit.
        decontaminate: drop conversations whose user turns match benchmark prompts (after clean, before dedup).
        decontaminate_against: JSONL / JSON files of more prompts, besides the bundled Vicuna-bench / MT-bench.
        decontaminate_benchmarks: which bundled benchmarks to decontaminate against (default both).
        near_dedup: drop near-duplicate conversations, one kept per cluster (after the model filter).
        near_dedup_threshold: estimated Jaccard similarity of two transcripts from which they are near-duplicates.
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
    max_record_mb: float | None = DEFAULT_MAX_RECORD_MB
    decontaminate: bool = True
    decontaminate_against: Sequence[str] = ()
    decontaminate_benchmarks: Sequence[str] = BUNDLED_BENCHMARKS
    near_dedup: bool = True
    near_dedup_threshold: float = NearDedupConfig.threshold

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
        if self.max_record_mb is not None and not self.max_record_mb > 0:
            raise DataPipelineError(f"max_record_mb must be > 0 (or None for no limit), got {self.max_record_mb}.")
        self.filter_models = [m for m in self.filter_models if m]
        self.blocked_words = list(self.blocked_words)
        self.decontaminate_against = [str(p) for p in self.decontaminate_against]
        self.decontaminate_benchmarks = list(self.decontaminate_benchmarks)
        NearDedupConfig(threshold=self.near_dedup_threshold)  # checks the value

    @property
    def max_record_bytes(self) -> int | None:
        return None if self.max_record_mb is None else int(self.max_record_mb * 1_000_000)


def _output_paths(output_dir: Path, model_types: Sequence[str]) -> list[Path]:
    paths = [output_dir / name for name in ("clean", "report.json", "report.md", DROP_LOG, DUPLICATE_IDS)]
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

    Every input record is either kept or dropped with a reason: each drop is a line of ``output_dir/dropped.jsonl``
    and the report's counts are the counts of that log. A run in which nothing survives a step still writes its
    report; ``report["messages"]`` says what happened.
    """
    config = config or PipelineConfig()
    started = time.perf_counter()
    output_dir = Path(output_dir)
    tokenizer_paths = parse_tokenizer_spec(config.tokenizer, config.model_types)
    # Load and check every tokenizer before any work (the convert step uses these very objects).
    tokenizers = {name: load_tokenizer(path, name) for name, path in tokenizer_paths.items()}
    decontaminator = (
        build_decontaminator(config.decontaminate_against, bundled=config.decontaminate_benchmarks)
        if config.decontaminate
        else None
    )
    skipped: list[str] = []
    files = discover_inputs(input_path, exclude=output_dir, skipped=skipped)
    if output_dir.exists() and not output_dir.is_dir():
        raise DataPipelineError(f"Output {output_dir} exists and is not a folder.")
    created = not output_dir.exists()
    output_dir.mkdir(parents=True, exist_ok=True)

    report = new_report(str(input_path), str(output_dir), len(files), _jsonable(config))
    report["skipped_folders"] = skipped
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
            max_record_bytes=config.max_record_bytes,
            filter_models=tuple(config.filter_models),
            raw_filter=True,
        )
        builder.download_and_prepare(num_proc=num_proc if num_proc and len(files) > 1 else None)
        raw = builder.as_dataset("train")
        report["inputs"] = len(raw)
        logger.info("Read %d records from %d files", len(raw), len(files))
        labels = _model_labels(raw)
        report["input_models"] = labels
        _check_filter_applies(labels, config.filter_models, input_path)
    except BaseException:
        shutil.rmtree(cache_dir, ignore_errors=True)
        if created and not any(output_dir.iterdir()):
            output_dir.rmdir()
        raise

    for path in _output_paths(output_dir, config.model_types):
        _remove(path)
    log = DropLog(output_dir)
    try:
        # 2. clean (per record, parallel).
        cleaned = raw.map(
            clean_batch,
            batched=True,
            batch_size=config.batch_size,
            num_proc=num_proc,
            fn_kwargs={"blocked_words": tuple(config.blocked_words)},
            remove_columns=["turns", "clean", "error", "detail"],
            new_fingerprint=f"clean-{_fingerprint(config)}",
            desc="clean",
        )

        # 3. decontaminate against benchmark prompts.
        contaminated: dict[int, dict] = {}
        if decontaminator is not None:
            contaminated, report["decontamination"] = decontaminate_step(cleaned, decontaminator)

        # 4. dedup (first occurrence wins, in input order; the model filter ran at read time).
        kept_indices, duplicate_ids = _dedup_and_filter(cleaned, config, log, contaminated)

        # 6. near-dedup: one conversation kept per cluster.
        if config.near_dedup:
            nd_config = NearDedupConfig(threshold=config.near_dedup_threshold)
            kept_indices, report["near_dedup"] = near_dedup_step(cleaned, kept_indices, nd_config, log)
        report["kept"] = len(kept_indices)
        report["duplicate_ids"] = _write_duplicate_ids(duplicate_ids, output_dir)

        clean = cleaned.select(kept_indices).select_columns(list(CLEAN_COLUMNS))
        clean.save_to_disk(str(output_dir / "clean"), num_shards=1 if len(clean) == 0 else None)
        logger.info("Kept %d of %d conversations -> %s", len(clean), report["inputs"], output_dir / "clean")

        # 7. convert per model type.
        if not tokenizer_paths:
            report["note"] = "No --tokenizer given: only the clean dataset and this report were written."
        elif len(clean) == 0:
            report["messages"].append("Nothing left to tokenize: no model type was converted.")
        else:
            train_idx, eval_idx = split_indices(len(clean), config.eval_ratio, config.seed)
            has_id = cleaned.select(kept_indices)["has_id"]
            for name in config.model_types:
                report["model_types"][name] = _convert(
                    clean,
                    has_id,
                    name,
                    tokenizer_paths[name],
                    tokenizers.pop(name),
                    train_idx,
                    eval_idx,
                    output_dir,
                    config,
                    num_proc,
                    log,
                )
    finally:
        log.close()
        shutil.rmtree(cache_dir, ignore_errors=True)

    report["steps"] = _ordered_steps(log.counts())
    for name, mt in report["model_types"].items():
        mt["dropped"] = {r: log.counts(name).get("convert", {}).get(r, 0) for r in CONVERT_REASONS}
    report["top_drops"] = top_drops(log)
    report["drop_examples"] = drop_examples(log)
    report["messages"] = _outcome_messages(report, config) + report["messages"]
    report["seconds"] = round(time.perf_counter() - started, 3)
    check_report(report)
    write_report(report, output_dir)
    return report


def _model_labels(raw) -> dict[str, int]:
    """ShareGPT ``model`` labels of the readable records: ``{label: n}`` (``""``: no label), most common first."""
    counts: Counter[str] = Counter()
    for batch in raw.select_columns(["model", "error"]).iter(batch_size=10_000):
        counts.update(m.strip() for m, e in zip(batch["model"], batch["error"]) if not e or e in FILTER_REASONS)
    return dict(counts.most_common())


def _check_filter_applies(labels: dict[str, int], filter_models: Sequence[str], input_path) -> None:
    """Refuse a model filter that cannot apply: no readable record carries a ``model`` label."""
    readable = sum(labels.values())
    if filter_models and readable and not any(label for label in labels):
        wanted = ", ".join(repr(m) for m in filter_models)
        raise DataPipelineError(
            f"None of the {readable} readable records in {input_path} carries a ShareGPT 'model' label (as in "
            f"ShareGPT_V3_unfiltered_cleaned_split.json), so the model filter {wanted} would drop them all: "
            "pass --filter-model all (PipelineConfig(filter_models=[])) to keep every conversation."
        )


def _dedup_and_filter(
    cleaned, config: PipelineConfig, log: DropLog, contaminated: dict[int, dict]
) -> tuple[list[int], dict[str, list[dict]]]:
    """Log read / filter / clean / decontaminate drops and drop exact duplicates; ``(kept indices, duplicate ids)``.

    The model filter itself runs at read time (the builder marks the other models' records), so their pages are
    never cleaned and exact duplicates are found among the kept model's conversations only."""
    seen: dict[str, tuple[str, str, int]] = {}  # content hash -> (id, source, index) of the kept record
    ids: dict[str, list[dict]] = {}  # own id -> kept records carrying it
    kept_indices: list[int] = []
    index = 0
    names = ["reason", "hash", "id", "has_id", "source", "index", "excerpt"]
    with tqdm(total=len(cleaned), desc="dedup + filter", unit="conv") as bar:
        for batch in cleaned.select_columns(names).iter(batch_size=10_000):
            for reason, digest, rid, has_id, source, pos, why in zip(*(batch[n] for n in names)):
                where = {"source": source, "index": pos, "id": rid if has_id else None}
                if reason in FILTER_REASONS:  # filtered by model at read time, before cleaning
                    log.add("filter", reason, **where, excerpt=why)
                elif reason:
                    log.add("read" if reason in READ_REASONS else "clean", reason, **where, excerpt=why)
                elif index in contaminated:
                    log.add("decontaminate", contaminated[index]["rule"], **where, **contaminated[index])
                elif digest in seen:
                    kept_id, kept_source, kept_index = seen[digest]
                    log.add(
                        "dedup",
                        DUPLICATE,
                        **where,
                        excerpt=f"same content as {kept_source}#{kept_index}; {why}",
                        kept_id=kept_id,
                        kept_source=kept_source,
                        kept_index=kept_index,
                    )
                else:
                    seen[digest] = (where["id"], source, pos)
                    kept_indices.append(index)
                    if has_id:
                        ids.setdefault(rid, []).append({"source": source, "index": pos})
                index += 1
            bar.update(len(batch["reason"]))
    return kept_indices, {rid: recs for rid, recs in ids.items() if len(recs) > 1}


def _write_duplicate_ids(duplicates: dict[str, list[dict]], output_dir: Path) -> dict[str, Any]:
    """Ids carried by several kept conversations of different content: ``OUT/duplicate_ids.jsonl`` + a summary."""
    path = output_dir / DUPLICATE_IDS
    with open(path, "w", encoding="utf-8") as f:
        for rid, records in duplicates.items():
            f.write(json.dumps({"id": rid, "records": records}, ensure_ascii=False) + "\n")
    if duplicates:
        logger.warning(
            "%d ids are carried by conversations of different content (all kept): see %s", len(duplicates), path
        )
    return {
        "ids": len(duplicates),
        "records": sum(len(r) for r in duplicates.values()),
        "examples": [{"id": rid, "records": recs[:5]} for rid, recs in list(duplicates.items())[:5]],
    }


def _ordered_steps(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    steps = {step: counts.get(step, {}) for step in STEPS}
    steps.update({step: c for step, c in counts.items() if step not in steps and step != "convert"})
    return steps


def _outcome_messages(report: dict[str, Any], config: PipelineConfig) -> list[str]:
    """Plain-language notes on a run in which nothing (or nothing of a model type) survived."""
    messages = [f"Skipped {s} (not ShareGPT data)." for s in report["skipped_folders"]]
    if report["inputs"] and report["kept"] == 0:
        top = ", ".join(f"{d['step']}/{d['reason']}: {d['records']}" for d in report["top_drops"][:3])
        msg = f"Nothing was kept: all {report['inputs']} records were dropped ({top}); see {DROP_LOG}."
        if report["steps"].get("filter") and not any(report["steps"][s] for s in ("clean", "dedup")):
            found = ", ".join(f"{m or '(none)'!r}: {n}" for m, n in list(report["input_models"].items())[:5])
            wanted = ", ".join(repr(m) for m in config.filter_models)
            msg += f" No record matched --filter-model {wanted}; model labels found: {found}. "
            msg += "Pass --filter-model LABEL (repeatable) or --filter-model all."
        messages.append(msg)
    for name, mt in report["model_types"].items():
        if mt["train"] == 0:
            dropped = ", ".join(f"{r}: {n}" for r, n in mt["dropped"].items() if n) or "none dropped"
            messages.append(f"{name}: no training conversation left ({dropped}); see {DROP_LOG}.")
    if report["duplicate_ids"]["ids"]:
        dup = report["duplicate_ids"]
        messages.append(
            f"{dup['ids']} id{'s are' if dup['ids'] != 1 else ' is'} carried by {dup['records']} kept "
            f"conversations of different content (all kept; see {DUPLICATE_IDS})."
        )
    return messages


def _convert(
    clean, has_id, name, tokenizer_path, tokenizer, train_idx, eval_idx, output_dir, config, num_proc, log
) -> dict[str, Any]:
    import datasets

    from openchat_hf.model_types import get_model_type
    from openchat_hf.templates import setup_tokenizer

    model_type = get_model_type(name)
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
    dropped_rows = [i for i, r in enumerate(reasons) if r]
    if dropped_rows:
        where = clean.select(dropped_rows).select_columns(["id", "source", "index", "messages"]).to_dict()
        for j, i in enumerate(dropped_rows):
            n = stats["length"][i]
            at_least = "+" if n >= model_type.max_length + CUT_MARGIN_TOKENS else ""  # cut before tokenizing
            why = f"{n}{at_least} tokens (context {model_type.max_length})"
            if reasons[i] == NO_SUPERVISED_TOKENS:
                why = f"no assistant token within the first {model_type.max_length} tokens"
            first = first_user_excerpt(where["messages"][j])
            log.add(
                "convert",
                reasons[i],
                source=where["source"][j],
                index=where["index"][j],
                id=where["id"][j] if has_id[i] else None,
                excerpt=f"{why}; {first}",
                model_type=name,
            )
    splits = {}
    for split, indices in (("train", train_idx), ("eval", eval_idx)):
        keep = [i for i in indices if not reasons[i]]
        splits[split] = converted.select(keep)
    result = {
        "tokenizer": str(tokenizer_path),
        "tokenizer_info": _tokenizer_info(tokenizer, tokenizer_path, model_type),
        "template": _template_info(template, model_type),
        "max_length": model_type.max_length,
        "input": len(converted),
        "train": len(splits["train"]),
        "eval": len(splits["eval"]),
        "dropped": {},  # filled from the drop log
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


def _tokenizer_info(tokenizer, path, model_type) -> dict[str, Any]:
    """What identifies the tokenizer a model type was tokenized with (for the dataset card)."""
    import hashlib

    file = Path(path) / "tokenizer.json"
    return {
        "name_or_path": str(getattr(tokenizer, "name_or_path", "") or path),
        "class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "bos_token": tokenizer.bos_token,
        "eot_token": model_type.eot_token,
        "eot_token_id": tokenizer.convert_tokens_to_ids(model_type.eot_token),
        "sha256": hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else None,
    }


def _template_info(template, model_type) -> dict[str, Any]:
    example = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    return {
        "family": model_type.family,
        "user_prefix": model_type.user_prefix,
        "assistant_prefix": model_type.assistant_prefix,
        "system_prefix": model_type.system_prefix,
        "eot_token": model_type.eot_token,
        "add_bos": model_type.add_bos,
        "example": template.render(example).text,
    }


def _jsonable(config: PipelineConfig) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}


def _fingerprint(config: PipelineConfig) -> str:
    import xxhash

    return xxhash.xxh3_64_hexdigest((repr(sorted(_jsonable(config).items())) + str(time.time_ns())).encode())
