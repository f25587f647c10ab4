"""A ``datasets`` builder for ShareGPT sources, prepared by the library itself (no loading script).

``datasets`` 4+ has no loading scripts; instantiate the builder and let it prepare the Arrow files::

    builder = ShareGPTBuilder(data_dir="INPUT", cache_dir="/tmp/cache", stage="clean")
    builder.download_and_prepare(num_proc=2)
    ds = builder.as_dataset("train")

``stage="raw"`` yields every input record (with its read ``error``, if any); the pipeline starts from it.
``stage="clean"`` yields only the cleaned conversations that pass the model filter (no cross-file deduplication:
that is a step of :func:`openchat_hf.data.run_pipeline`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import datasets
from datasets.builder import Key

from openchat_hf.data.clean import DEFAULT_BLOCKED_WORDS, blocked_words_pattern, clean_conversation
from openchat_hf.data.errors import DataPipelineError
from openchat_hf.data.filter import DEFAULT_FILTER_MODELS, keep_model
from openchat_hf.data.sources import HTML_SUFFIXES, discover_inputs, iter_records

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
    """

    files: list[str] = field(default_factory=list)
    root: str | None = None
    stage: str = "raw"
    blocked_words: Sequence[str] = DEFAULT_BLOCKED_WORDS
    filter_models: Sequence[str] = DEFAULT_FILTER_MODELS
    max_record_bytes: int | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.stage not in ("raw", "clean"):
            raise DataPipelineError(f"Unknown stage {self.stage!r}: use 'raw' or 'clean'.")


class ShareGPTBuilder(datasets.GeneratorBasedBuilder):
    """ShareGPT pages / JSON dumps -> a ``train`` split of raw records or cleaned conversations."""

    BUILDER_CONFIG_CLASS = ShareGPTConfig
    DEFAULT_WRITER_BATCH_SIZE = 1000

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

    def _generate_examples(self, files: list[str], root: str):
        blocked = blocked_words_pattern(self.config.blocked_words) if self.config.stage == "clean" else None
        for i, record in enumerate(iter_records(files, root, self.config.max_record_bytes)):
            if self.config.stage == "raw":
                yield Key(0, i), record
                continue
            if record["error"] or not keep_model(record["model"], self.config.filter_models):
                continue
            page = record["source"].lower().endswith(HTML_SUFFIXES)  # a page's values are HTML or escaped text
            messages, reason = clean_conversation(
                record["turns"], already_clean=record["clean"], blocked=blocked, escaped=True if page else None
            )
            if not reason:
                yield Key(0, i), {k: record[k] for k in ("id", "model", "source")} | {"messages": messages}
