"""Find and read ShareGPT inputs as a stream of raw records, one per input conversation.

Inputs, detected by file name: ShareGPT pages (``*.html``: the conversation JSON sits in
``<script id="__NEXT_DATA__">`` under ``props.pageProps.content``), ShareGPT JSON dumps (``*.json`` holding a list of
``{id, conversations|items: [{from, value}], model?}``, values HTML or Markdown, or ``*.jsonl`` with one such object
per line) and already-clean JSON (``{id, messages: [{role, content}], model?}``).

Nothing is lost silently: a page or element that cannot be read becomes a record with an ``error`` reason and a
``detail`` (what was wrong, where), logged as a drop by the pipeline. A JSON array is parsed element by element
(memory stays flat); when it is truncated or invalid, the elements before the damage are kept and the unreadable rest
counts as one dropped record. Each record carries its ``source`` file and its ``index`` in that file.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from openchat_hf.data.errors import DataPipelineError

logger = logging.getLogger(__name__)

HTML_SUFFIXES = (".html", ".htm")
JSON_SUFFIXES = (".json", ".jsonl")

# Drop reasons of the read step.
NOT_UTF8 = "not_utf8"
UNREADABLE_FILE = "unreadable_file"
NO_NEXT_DATA = "no_next_data"
TRUNCATED = "truncated_file"
INVALID_JSON = "invalid_json"
WRONG_SHAPE = "wrong_shape"
TOO_LARGE = "too_large"
READ_REASONS = (UNREADABLE_FILE, NOT_UTF8, NO_NEXT_DATA, TRUNCATED, INVALID_JSON, WRONG_SHAPE, TOO_LARGE)
DETAIL_CHARS = 200

_NEXT_DATA_RE = re.compile(r"<script\b[^>]*\bid\s*=\s*[\"']__NEXT_DATA__[\"'][^>]*>", re.IGNORECASE)
_SCRIPT_END_RE = re.compile(r"</script\s*>", re.IGNORECASE)
_CHUNK = 1 << 20


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def not_data_folder(folder: str | Path) -> str | None:
    """What ``folder`` holds when it is not ShareGPT data (a model, a tokenizer, a saved dataset, a pipeline
    output), as a phrase naming the files found; ``None`` for anything else."""
    folder = Path(folder)
    try:
        names = {p.name for p in folder.iterdir() if p.is_file()}
    except OSError:
        return None

    def found(*candidates: str) -> str:
        return ", ".join(n for n in sorted(names) if n in candidates or n.endswith(_WEIGHT_SUFFIXES))

    weights = any(n.endswith(_WEIGHT_SUFFIXES) for n in names)
    if "config.json" in names and (weights or "generation_config.json" in names):
        return "a model (" + found("config.json", "generation_config.json", "tokenizer.json") + ")"
    if "tokenizer_config.json" in names and ("tokenizer.json" in names or "tokenizer.model" in names):
        return "a tokenizer (" + found("tokenizer_config.json", "tokenizer.json", "tokenizer.model") + ")"
    if "report.json" in names and (folder / "clean").is_dir():
        return "the output of `openchat-hf data run` (report.json, clean/)"
    if "dataset_info.json" in names and "state.json" in names or "dataset_dict.json" in names:
        return "a saved `datasets` dataset (" + found("dataset_info.json", "state.json", "dataset_dict.json") + ")"
    return None


def discover_inputs(
    input_path: str | Path, exclude: str | Path | None = None, skipped: list[str] | None = None
) -> list[Path]:
    """The input files under ``input_path`` (a file or a folder searched recursively), in a stable order.

    ``exclude`` (e.g. the output folder) and hidden folders are skipped, and so are folders that hold a model, a
    tokenizer, a saved dataset or a pipeline output (each appended to ``skipped`` as ``"path: what"``); ``input_path``
    itself being one of those is an error naming what was found.
    """
    path = Path(input_path)
    if not path.exists():
        raise DataPipelineError(f"Input {path} does not exist: pass a folder of ShareGPT pages or a JSON dump.")
    if path.is_dir() and (what := not_data_folder(path)):
        raise DataPipelineError(
            f"Input {path} holds {what}, not ShareGPT data: pass a folder of ShareGPT pages (*.html) or JSON dumps "
            "(*.json / *.jsonl); a model or tokenizer folder goes to --tokenizer or `openchat-hf train`."
        )
    if path.is_file():
        if path.suffix.lower() not in HTML_SUFFIXES + JSON_SUFFIXES:
            raise DataPipelineError(f"Input {path} is not a ShareGPT page (.html) or a JSON dump (.json/.jsonl).")
        return [path]
    root = path.resolve()
    excluded = None
    if exclude is not None:
        excluded = Path(exclude).resolve()
        excluded = excluded.relative_to(root).parts if excluded.is_relative_to(root) else None
        excluded = excluded or None  # OUT == INPUT: nothing to skip
    files = []
    for dirpath, dirnames, filenames in os.walk(path):
        rel_dir = Path(dirpath).relative_to(path).parts
        if excluded is not None and rel_dir[: len(excluded)] == excluded:
            dirnames[:] = []
            continue
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for d in list(dirnames):
            if what := not_data_folder(Path(dirpath) / d):
                dirnames.remove(d)
                logger.warning("Skipping %s: it holds %s, not ShareGPT data.", Path(dirpath) / d, what)
                if skipped is not None:
                    skipped.append(f"{(Path(dirpath) / d).relative_to(path).as_posix()}: {what}")
        for name in filenames:
            if name.lower().endswith(HTML_SUFFIXES + JSON_SUFFIXES) and not name.startswith("."):
                if excluded is None or (*rel_dir, name) != excluded:
                    files.append(Path(dirpath) / name)
    if not files:
        raise DataPipelineError(
            f"No ShareGPT input found in {path}: expected *.html pages (e.g. {path}/ShareGPT/*.html), "
            "*.json or *.jsonl files." + (f" Skipped: {'; '.join(skipped)}." if skipped else "")
        )
    return sorted(files, key=lambda f: f.relative_to(path).as_posix())


def _record(
    rid: str,
    source: str,
    index: int = 0,
    *,
    has_id: bool = False,
    model: str = "",
    turns=None,
    clean: bool = False,
    error: str = "",
    detail: str = "",
) -> dict:
    return {
        "id": rid,
        "has_id": has_id,
        "index": index,
        "model": model,
        "source": source,
        "turns": turns or [],
        "clean": clean,
        "error": error,
        "detail": " ".join(detail.split())[:DETAIL_CHARS],
    }


_TAG_RE = re.compile(r"<[^>]*>")


def filtered_record(record: dict, reason: str) -> dict:
    """``record`` dropped by the model filter before cleaning: ``error`` is the filter's ``reason``, ``detail`` the
    model and the start of the first user turn (tags stripped, entities decoded), and the turns are not kept."""
    import html

    first = next((t["value"] for t in record["turns"] if str(t["from"]).strip().lower() in ("human", "user")), "")
    first = html.unescape(_TAG_RE.sub(" ", first[: 4 * DETAIL_CHARS]))
    detail = f"model: {record['model'].strip() or '(none)'}; {first}"
    return {**record, "turns": [], "error": reason, "detail": " ".join(detail.split())[:DETAIL_CHARS]}


def _shape_detail(obj: Any, what: str) -> str:
    try:
        shown = json.dumps(obj, ensure_ascii=False)[:DETAIL_CHARS]
    except (TypeError, ValueError):
        shown = repr(obj)[:DETAIL_CHARS]
    return f"{what}: {shown}"


def record_from_object(obj: Any, rid: str, source: str, index: int = 0) -> dict:
    """A raw record from one conversation object (ShareGPT ``conversations``/``items`` or clean ``messages``)."""
    if not isinstance(obj, dict):
        return _record(rid, source, index, error=WRONG_SHAPE, detail=_shape_detail(obj, "not an object"))
    has_id = obj.get("id") not in (None, "")
    rid = str(obj["id"]) if has_id else rid
    model = obj.get("model")
    model = model if isinstance(model, str) else ""
    base = {"has_id": has_id, "model": model}
    if isinstance(obj.get("messages"), list):
        turns, key_role, key_text, clean = obj["messages"], "role", "content", True
    else:
        turns = obj.get("conversations", obj.get("items"))
        key_role, key_text, clean = "from", "value", False
    if not isinstance(turns, list):
        keys = ", ".join(sorted(map(str, obj))[:12])
        detail = f"no list of turns under conversations / items / messages (keys: {keys})"
        return _record(rid, source, index, **base, error=WRONG_SHAPE, detail=detail)
    out = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            return _record(rid, source, index, **base, error=WRONG_SHAPE, detail=_shape_detail(turn, f"turn {i}"))
        role, text = turn.get(key_role), turn.get(key_text)
        if text is None:
            text = ""
        if not isinstance(role, str) or not isinstance(text, str):
            detail = _shape_detail(turn, f"turn {i} needs string {key_role!r} and {key_text!r}")
            return _record(rid, source, index, **base, error=WRONG_SHAPE, detail=detail)
        out.append({"from": role, "value": text})
    return _record(rid, source, index, **base, turns=out, clean=clean)


def _too_large(size: int, limit: int, what: str) -> str:
    return f"{what} of {size / 1e6:.1f} MB is over the {limit / 1e6:g} MB limit (--max-record-mb)"


def read_html_page(path: str | Path, source: str, max_bytes: int | None = None) -> dict:
    """One ShareGPT page -> one raw record (an error reason when the page can't be read).

    A page larger than ``max_bytes`` is not read at all (reason ``too_large``).
    """
    rid = _stem(os.path.basename(path))  # a ShareGPT page is named by its id
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if max_bytes is not None and size > max_bytes:
                detail = _too_large(size, max_bytes, "page")
                return _record(rid, source, has_id=True, error=TOO_LARGE, detail=detail)
            data = f.read()
    except OSError as err:
        logger.warning("Cannot read %s: %s", path, err)
        return _record(rid, source, has_id=True, error=UNREADABLE_FILE, detail=str(err))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        detail = f"byte {data[err.start]:#04x} at offset {err.start} is not UTF-8"
        return _record(rid, source, has_id=True, error=NOT_UTF8, detail=detail)
    start = _NEXT_DATA_RE.search(text)
    if start is None:
        detail = "no <script id=__NEXT_DATA__> in the page: " + re.sub(r"<[^>]*>", " ", text[:2000])
        return _record(rid, source, has_id=True, error=NO_NEXT_DATA, detail=detail)
    end = _SCRIPT_END_RE.search(text, start.end())
    if end is None:
        detail = f"the page ends inside __NEXT_DATA__ after {len(text)} characters"
        return _record(rid, source, has_id=True, error=TRUNCATED, detail=detail)
    try:
        page = json.loads(text[start.end() : end.start()])
    except json.JSONDecodeError as err:
        return _record(rid, source, has_id=True, error=INVALID_JSON, detail=f"__NEXT_DATA__: {err}")
    props = page.get("props", {}).get("pageProps", {}) if isinstance(page, dict) else None
    content = props.get("content") if isinstance(props, dict) else None
    if not isinstance(content, dict):
        detail = "__NEXT_DATA__ has no props.pageProps.content object"
        return _record(rid, source, has_id=True, error=WRONG_SHAPE, detail=detail)
    if props.get("id"):
        rid = str(props["id"])
    return record_from_object({**content, "id": rid}, rid, source)


def _incomplete(err: json.JSONDecodeError, buffer_len: int) -> bool:
    """Whether a decode error may just mean that the buffer ends inside the value."""
    return err.msg.startswith("Unterminated string") or err.pos >= buffer_len - 1


def _iter_json_values(f, path: Path) -> Iterator[tuple[Any, str, str, int]]:
    """Top-level values of a JSON file, streaming the elements of a top-level array.

    Yields ``(value, error, detail, size)``: ``size`` is the value's length in characters.
    """
    decoder = json.JSONDecoder()
    buf, pos, eof = "", 0, False

    def fill() -> bool:
        nonlocal buf, pos, eof
        chunk = f.read(max(_CHUNK, len(buf) - pos))
        if not chunk:
            eof = True
            return False
        buf, pos = buf[pos:] + chunk, 0
        return True

    def skip_ws() -> bool:  # True when a non-space character is available
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf):
                return True
            if not fill():
                return False

    def near() -> str:
        return f" near {buf[pos : pos + 80]!r}" if pos < len(buf) else ""

    if not skip_ws():
        yield None, TRUNCATED, "the file is empty", 0
        return
    in_array = buf[pos] == "["
    if in_array:
        pos += 1
    count = 0
    while True:
        if not skip_ws():
            if in_array:
                yield None, TRUNCATED, f"the file ends inside the top-level array after {count} records", 0
            return
        if in_array:
            if buf[pos] == "]":
                return
            if count:
                if buf[pos] != ",":
                    yield None, INVALID_JSON, f"expected ',' or ']' after {count} records{near()}", 0
                    return
                pos += 1
                if not skip_ws():
                    yield None, TRUNCATED, f"the file ends inside the top-level array after {count} records", 0
                    return
        elif count:
            yield None, INVALID_JSON, f"unexpected data after the top-level value{near()}", 0
            return
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as err:
                if not eof and _incomplete(err, len(buf)) and fill():
                    continue
                if eof and _incomplete(err, len(buf)):
                    yield None, TRUNCATED, f"the file ends inside record {count} ({err.msg})", 0
                else:
                    yield None, INVALID_JSON, f"record {count}: {err.msg}{near()}", 0
                return
            if end == len(buf) and not eof and not isinstance(value, (dict, list, str)) and fill():
                continue  # a number may continue in the next chunk
            break
        size, pos = end - pos, end
        count += 1
        yield value, "", "", size


def iter_json_file(path: Path, source: str, max_bytes: int | None = None) -> Iterator[dict]:
    """Records of a JSON dump (array, single object or JSON Lines), streamed.

    A record larger than ``max_bytes`` (its JSON text, in characters) is dropped as ``too_large`` without cleaning.
    """
    stem = path.stem
    index = 0

    def too_large(size: int) -> dict:
        detail = _too_large(size, max_bytes, "record")
        return _record(f"{stem}-{index}", source, index, error=TOO_LARGE, detail=detail)

    try:
        with open(path, encoding="utf-8-sig") as f:
            if path.suffix.lower() == ".jsonl":
                for line in f:
                    if not line.strip():
                        continue
                    if max_bytes is not None and len(line) > max_bytes:
                        yield too_large(len(line))
                        index += 1
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as err:
                        detail = f"line {index}: {err.msg}: {line[:120]!r}"
                        yield _record(f"{stem}-{index}", source, index, error=INVALID_JSON, detail=detail)
                    else:
                        yield record_from_object(obj, f"{stem}-{index}", source, index)
                    index += 1
                return
            for value, error, detail, size in _iter_json_values(f, path):
                rid = f"{stem}-{index}"
                if error:
                    logger.warning(
                        "%s: %s after %d records; the rest counts as one dropped record.", path, error, index
                    )
                    yield _record(rid, source, index, error=error, detail=detail)
                elif max_bytes is not None and size > max_bytes:
                    yield too_large(size)
                elif index == 0 and isinstance(value, dict) and "props" in value:  # a saved __NEXT_DATA__ blob
                    content = value.get("props", {}).get("pageProps", {}).get("content")
                    yield record_from_object(content, rid, source, index)
                else:
                    yield record_from_object(value, rid, source, index)
                index += 1
    except UnicodeDecodeError as err:
        logger.warning("%s is not UTF-8 after %d records; the rest counts as one dropped record.", path, index)
        detail = f"not UTF-8 after {index} records: {err.reason} (byte {err.object[err.start]:#04x})"
        yield _record(f"{stem}-{index}", source, index, error=NOT_UTF8, detail=detail)
    except OSError as err:
        logger.warning("Cannot read %s: %s", path, err)
        yield _record(f"{stem}-{index}", source, index, error=UNREADABLE_FILE, detail=str(err))


def _stem(name: str) -> str:
    """``Path(name).stem`` of a file name."""
    dot = name.rfind(".")
    return name[:dot] if 0 < dot < len(name) - 1 else name


def _source_name(name: str, root: Path, prefix: str) -> str:
    """``name`` relative to ``root`` as a POSIX path (``Path.relative_to``; a plain prefix cut when it applies)."""
    if prefix and name.startswith(prefix) and "//" not in name and "/./" not in name and "/../" not in name:
        return name[len(prefix) :]
    path = Path(name)
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def iter_records(files: list[str], root: str, max_record_bytes: int | None = None) -> Iterator[dict]:
    """Raw records of all ``files`` (paths; ``source`` is each path relative to ``root``).

    ``max_record_bytes``: a page or JSON record larger than this is dropped as ``too_large`` (``None``: no limit).
    """
    root_path = Path(root)
    prefix = str(root_path).rstrip("/") + "/" if os.sep == "/" else ""
    for name in map(str, files):
        source = _source_name(name, root_path, prefix)
        base = os.path.basename(name)
        if base.lower().endswith(HTML_SUFFIXES) and _stem(base) != base:  # Path.suffix: not a leading dot
            yield read_html_page(name, source, max_record_bytes)
        else:
            yield from iter_json_file(Path(name), source, max_record_bytes)
