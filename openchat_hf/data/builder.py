"""A ``datasets`` builder for ShareGPT sources, prepared by the library itself (no loading script).

``datasets`` 4+ has no loading scripts; instantiate the builder and let it prepare the Arrow files::

    builder = ShareGPTBuilder(data_dir="INPUT", cache_dir="/tmp/cache", stage="clean")
    builder.download_and_prepare(num_proc=2)
    ds = builder.as_dataset("train")

``stage="raw"`` yields every input record (with its read ``error``, if any); the pipeline starts from it. With
``filter_models`` set, a raw record from another model keeps only its metadata: its ``error`` is the filter's reason
(``model_filtered`` / ``no_model_label``) and its turns are not stored (the pipeline filters by model before
cleaning, so those turns are never read again). ``stage="clean"`` yields only the cleaned conversations that pass the model filter (no cross-file deduplication:
that is a step of :func:`openchat_hf.data.run_pipeline`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import datasets
import pyarrow as pa
from datasets.builder import Key

from openchat_hf.data.clean import DEFAULT_BLOCKED_WORDS, blocked_words_pattern, clean_conversation
from openchat_hf.data.errors import DataPipelineError
from openchat_hf.data.filter import DEFAULT_FILTER_MODELS, filter_reason, keep_model
from openchat_hf.data.sources import HTML_SUFFIXES, discover_inputs, filtered_record, iter_records

TURN = {"from": datasets.Value("string"), "value": datasets.Value("string")}
MESSAGE = {"role": datasets.Value("string"), "content": datasets.Value("string")}
RAW_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "has_id": datasets.Value("bool"),
        "index": datasets.Value("int64"),
        "model": datasets.Value("string"),
        "source": datasets.Value("string"),
        "turns": datasets.List(TURN),
        "clean": datasets.Value("bool"),
        "error": datasets.Value("string"),
        "detail": datasets.Value("string"),
    }
)
CLEAN_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "model": datasets.Value("string"),
        "messages": datasets.List(MESSAGE),
        "source": datasets.Value("string"),
    }
)


@dataclass
class ShareGPTConfig(datasets.BuilderConfig):
    """``files`` (or ``data_dir``, searched like the CLI's INPUT), ``root`` for ``source`` names, the ``stage``.

    ``max_record_bytes``: pages / JSON records larger than this are read as ``too_large`` errors (``None``: no limit).
    ``filter_models``: the model filter (both stages; ``stage="raw"`` marks the other models' records, see above).
    ``raw_filter``: whether ``stage="raw"`` applies the model filter (off: every record keeps its turns).
    """

    files: list[str] = field(default_factory=list)
    root: str | None = None
    stage: str = "raw"
    blocked_words: Sequence[str] = DEFAULT_BLOCKED_WORDS
    filter_models: Sequence[str] = DEFAULT_FILTER_MODELS
    max_record_bytes: int | None = None
    raw_filter: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.stage not in ("raw", "clean"):
            raise DataPipelineError(f"Unknown stage {self.stage!r}: use 'raw' or 'clean'.")


class ShareGPTBuilder(datasets.ArrowBasedBuilder):
    """ShareGPT pages / JSON dumps -> a ``train`` split of raw records or cleaned conversations.

    Records are written as Arrow tables of ``TABLE_ROWS`` rows built by Arrow's C++ converters
    (``pa.Table.from_pylist``), not encoded one example at a time by ``datasets``.
    """

    BUILDER_CONFIG_CLASS = ShareGPTConfig
    TABLE_ROWS = 1000

    def _info(self) -> datasets.DatasetInfo:
        features = RAW_FEATURES if self.config.stage == "raw" else CLEAN_FEATURES
        return datasets.DatasetInfo(description="ShareGPT conversations (openchat-hf)", features=features)

    def _split_generators(self, dl_manager):
        files = list(self.config.files)
        root = self.config.root
        if not files:
            if not self.config.data_dir:
                raise DataPipelineError("ShareGPTBuilder needs files=[...] or data_dir=FOLDER.")
            files = [str(f) for f in discover_inputs(self.config.data_dir)]
            root = root or str(self.config.data_dir)
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"files": files, "root": root or "/"})]

    def _generate_tables(self, files: list[str], root: str):
        schema = self.info.features.arrow_schema
        rows, batch = [], 0
        for row in self._generate_rows(files, root):
            rows.append(row)
            if len(rows) == self.TABLE_ROWS:
                yield Key(0, batch), pa.Table.from_pylist(rows, schema=schema)
                rows, batch = [], batch + 1
        if rows or batch == 0:
            yield Key(0, batch), pa.Table.from_pylist(rows, schema=schema)

    def _generate_rows(self, files: list[str], root: str):
        cfg = self.config
        blocked = blocked_words_pattern(cfg.blocked_words) if cfg.stage == "clean" else None
        for record in iter_records(files, root, cfg.max_record_bytes):
            if cfg.stage == "raw":
                if (
                    cfg.raw_filter
                    and not record["error"]
                    and (reason := filter_reason(record["model"], cfg.filter_models))
                ):
                    record = filtered_record(record, reason)
                yield record
                continue
            if record["error"] or not keep_model(record["model"], cfg.filter_models):
                continue
            page = record["source"].lower().endswith(HTML_SUFFIXES)  # a page's values are HTML or escaped text
            messages, reason = clean_conversation(
                record["turns"], already_clean=record["clean"], blocked=blocked, escaped=True if page else None
            )
            if not reason:
                yield {k: record[k] for k in ("id", "model", "source")} | {"messages": messages}
