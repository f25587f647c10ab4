"""Training data: the data pipeline's tokenized ``DatasetDict`` on disk, a Hub dataset, or conversations on the fly."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from openchat_hf.model_types import ModelType, get_model_type
from openchat_hf.templates import ChatTemplate
from openchat_hf.training.errors import TrainingError

logger = logging.getLogger(__name__)


def _saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").exists() or (folder / "state.json").exists()


def load_raw_dataset(path: str, config_name: str | None = None, model_type: str | None = None) -> Any:
    """``load_from_disk`` for a local folder (``Dataset`` or ``DatasetDict``), otherwise ``load_dataset`` (Hub id).

    The data pipeline's output root (``OUT``, which holds one ``OUT/<model_type>`` folder per model type) is refused
    with the folder to use instead: read as one dataset it would mix every model type's tokenization.
    """
    import datasets

    local = Path(path).expanduser()
    if local.is_dir():
        if _saved_dataset(local):
            return datasets.load_from_disk(str(local))
        subsets = sorted(p.name for p in local.iterdir() if p.is_dir() and _saved_dataset(p))
        if subsets or (local / "report.json").exists():
            name = model_type or "MODEL_TYPE"
            hint = (
                f"pass --dataset_path {local / name}"
                if name in subsets
                else f"it has no {name!r} folder; rerun `openchat-hf data run` with --model-types {name}"
            )
            raise TrainingError(
                f"{path!r} is the data pipeline's output folder (it holds {', '.join(subsets) or 'no dataset'}), not "
                f"a dataset: {hint} (the tokenized train/eval splits for model type {name})."
            )
        return datasets.load_dataset(str(local), config_name)
    if local.exists() or path.startswith((".", "/", "~")):
        raise TrainingError(f"Dataset path {path!r} is not a folder written by save_to_disk or a dataset folder.")
    try:
        return datasets.load_dataset(path, config_name)
    except Exception as err:  # noqa: BLE001 - any Hub / format failure becomes one clear message
        raise TrainingError(f"Could not load dataset {path!r} from disk or the Hub: {err}") from err


def tokenize_conversations(
    dataset: Any, tokenizer: Any, model_type: ModelType | str, num_proc: int | None = None
) -> Any:
    """Tokenize a ``messages`` dataset with the model type's template into ``input_ids``/``supervise_mask``/``length``.

    Conversations longer than the model type's context are truncated (as the data pipeline does by default).
    """
    mt = get_model_type(model_type)
    template = ChatTemplate(mt, tokenizer)

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        chats = template.tokenize_batch(batch["messages"], max_length=mt.max_length)
        return {
            "input_ids": [c.input_ids for c in chats],
            "supervise_mask": [c.supervise_mask for c in chats],
            "length": [len(c.input_ids) for c in chats],
        }

    keep = [c for c in ("weight",) if c in dataset.column_names]
    remove = [c for c in dataset.column_names if c not in keep]
    return dataset.map(tokenize, batched=True, remove_columns=remove, num_proc=num_proc, desc="Tokenizing")


def prepare_split(dataset: Any, tokenizer: Any, model_type: ModelType | str, num_proc: int | None = None) -> Any:
    """A split ready for the collator: tokenized columns present, conversations tokenized on the fly if needed."""
    columns = dataset.column_names
    if "input_ids" in columns and "supervise_mask" in columns:
        return dataset
    if "messages" in columns:
        return tokenize_conversations(dataset, tokenizer, model_type, num_proc)
    raise TrainingError(
        f"The dataset has columns {columns}; it needs 'input_ids' + 'supervise_mask' (the data pipeline's "
        "OUT/<model_type> output) or a conversational 'messages' column."
    )


def check_token_ids(dataset: Any, vocab: int, split: str = "train") -> None:
    """Every row's token ids lie in ``[0, vocab)`` (else the data was tokenized with another tokenizer).

    Computed over the whole ``input_ids`` column with Arrow (no Python loop over the rows).
    """
    import pyarrow.compute as pc

    column = dataset.data.column("input_ids")  # the rows behind any select(): a superset of what is used
    stats = pc.min_max(pc.list_flatten(column))
    low, top = stats["min"].as_py(), stats["max"].as_py()
    if top is None:
        return
    if top >= vocab or low < 0:
        bad = top if top >= vocab else low
        raise TrainingError(
            f"The {split!r} split has token id {bad} but the tokenizer has {vocab} tokens: it was tokenized with "
            "another tokenizer; rerun the data pipeline with --tokenizer pointing at this model."
        )


def load_sft_datasets(
    path: str,
    tokenizer: Any,
    model_type: ModelType | str,
    *,
    train_split: str = "train",
    eval_split: str | None = "eval",
    config_name: str | None = None,
    max_train_samples: int | None = None,
    num_proc: int | None = None,
) -> tuple[Any, Any | None]:
    """``(train, eval or None)`` from ``path`` (see :func:`load_raw_dataset`), ready for ``OpenChatSFTTrainer``."""
    import datasets

    name = getattr(model_type, "name", model_type)
    raw = load_raw_dataset(path, config_name, name)
    if isinstance(raw, datasets.Dataset):
        raw = datasets.DatasetDict({train_split: raw})
    if train_split not in raw:
        raise TrainingError(f"Dataset {path!r} has splits {list(raw)}; no {train_split!r} split to train on.")
    train = raw[train_split]
    if max_train_samples is not None:
        train = train.select(range(min(max_train_samples, len(train))))
    if len(train) == 0:
        raise TrainingError(f"The {train_split!r} split of {path!r} is empty.")
    train = prepare_split(train, tokenizer, model_type, num_proc)
    evaluation = None
    if eval_split and eval_split in raw and len(raw[eval_split]) > 0:
        evaluation = prepare_split(raw[eval_split], tokenizer, model_type, num_proc)
    for split, dataset in ((train_split, train), (eval_split, evaluation)):
        if dataset is not None:
            check_token_ids(dataset, len(tokenizer), split)
    logger.info("Training on %d conversations (%s), eval %s", len(train), path, len(evaluation) if evaluation else 0)
    return train, evaluation
