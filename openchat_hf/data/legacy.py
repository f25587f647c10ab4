"""OpenChat v1's output files: ``MODEL_TYPE.{train,eval}.json`` and ``MODEL_TYPE.{train,eval}.text.json``.

``MODEL_TYPE.SPLIT.json`` is ``[[token_ids, supervise_mask], ...]``; ``MODEL_TYPE.SPLIT.text.json`` is the list of
rendered conversation texts, in the same order. Both are written row by row (memory stays flat).
"""

from __future__ import annotations

from pathlib import Path

import orjson


def legacy_paths(output_dir: str | Path, model_type: str, split: str) -> tuple[Path, Path]:
    output_dir = Path(output_dir)
    return output_dir / f"{model_type}.{split}.json", output_dir / f"{model_type}.{split}.text.json"


def write_legacy_split(dataset, output_dir: str | Path, model_type: str, split: str, batch_size: int = 1000) -> None:
    """Write one split (a ``datasets.Dataset`` with ``input_ids``, ``supervise_mask``, ``text``) as legacy JSON."""
    ids_path, text_path = legacy_paths(output_dir, model_type, split)
    with open(ids_path, "wb") as f_ids, open(text_path, "wb") as f_text:
        f_ids.write(b"[")
        f_text.write(b"[")
        first = True
        table = dataset.select_columns(["input_ids", "supervise_mask", "text"]).with_format("arrow")
        for batch in table.iter(batch_size=batch_size):  # NumPy views of the Arrow buffers: no Python int per token
            ids, masks = (_rows(batch.column(name)) for name in ("input_ids", "supervise_mask"))
            for row_ids, row_mask, text in zip(ids, masks, batch.column("text").to_pylist()):
                sep = b"" if first else b",\n"
                f_ids.write(sep + orjson.dumps([row_ids, row_mask], option=orjson.OPT_SERIALIZE_NUMPY))
                f_text.write(sep + orjson.dumps(text))
                first = False
        f_ids.write(b"]\n")
        f_text.write(b"]\n")


def _rows(column) -> list:
    """The rows of an Arrow list column as NumPy slices of its flat values."""
    import numpy as np
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = np.asarray(array.offsets)
    values = array.values.to_numpy(zero_copy_only=False)
    return [values[offsets[i] : offsets[i + 1]] for i in range(len(array))]


def read_legacy_split(output_dir: str | Path, model_type: str, split: str) -> tuple[list, list[str]]:
    """``([[ids, mask], ...], [text, ...])`` of one legacy split."""
    ids_path, text_path = legacy_paths(output_dir, model_type, split)
    return orjson.loads(ids_path.read_bytes()), orjson.loads(text_path.read_bytes())
