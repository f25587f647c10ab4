"""Find and read ShareGPT inputs as a stream of raw records, one per input conversation.

Inputs, detected by file name: ShareGPT pages (``*.html``: the conversation JSON sits in
``<script id="__NEXT_DATA__">`` under ``props.pageProps.content``), ShareGPT JSON dumps (``*.json`` holding a list of
``{id, conversations|items: [{from, value}], model?}``, values HTML or Markdown, or ``*.jsonl`` with one such object
per line) and already-clean JSON (``{id, messages: [{role, content}], model?}``).

Nothing is lost silently: a page or element that cannot be read becomes a record with an ``error`` reason (counted as
a drop by the report). A JSON array is parsed element by element (memory stays flat); when it is truncated or
invalid, the elements before the damage are kept and the unreadable rest counts as one dropped record.
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
READ_REASONS = (UNREADABLE_FILE, NOT_UTF8, NO_NEXT_DATA, TRUNCATED, INVALID_JSON, WRONG_SHAPE)

_NEXT_DATA_RE = re.compile(r"<script\b[^>]*\bid\s*=\s*[\"']__NEXT_DATA__[\"'][^>]*>", re.IGNORECASE)
_SCRIPT_END_RE = re.compile(r"</script\s*>", re.IGNORECASE)
_CHUNK = 1 << 20


def discover_inputs(input_path: str | Path, exclude: str | Path | None = None) -> list[Path]:
    """The input files under ``input_path`` (a file or a folder searched recursively), in a stable order.

    ``exclude`` (e.g. the output folder) and hidden folders are skipped.
    """
    path = Path(input_path)
    if not path.exists():
        raise DataPipelineError(f"Input {path} does not exist: pass a folder of ShareGPT pages or a JSON dump.")
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
        for name in filenames:
            if name.lower().endswith(HTML_SUFFIXES + JSON_SUFFIXES) and not name.startswith("."):
                if excluded is None or (*rel_dir, name) != excluded:
                    files.append(Path(dirpath) / name)
    if not files:
        raise DataPipelineError(
            f"No ShareGPT input found in {path}: expected *.html pages (e.g. {path}/ShareGPT/*.html), "
            "*.json or *.jsonl files."
        )
    return sorted(files, key=lambda f: f.relative_to(path).as_posix())


def _record(rid: str, source: str, *, model: str = "", turns=None, clean: bool = False, error: str = "") -> dict:
    return {"id": rid, "model": model, "source": source, "turns": turns or [], "clean": clean, "error": error}


def record_from_object(obj: Any, rid: str, source: str) -> dict:
    """A raw record from one conversation object (ShareGPT ``conversations``/``items`` or clean ``messages``)."""
    if not isinstance(obj, dict):
        return _record(rid, source, error=WRONG_SHAPE)
    rid = str(obj["id"]) if obj.get("id") not in (None, "") else rid
    model = obj.get("model")
    model = model if isinstance(model, str) else ""
    if isinstance(obj.get("messages"), list):
        turns, key_role, key_text, clean = obj["messages"], "role", "content", True
    else:
        turns = obj.get("conversations", obj.get("items"))
        key_role, key_text, clean = "from", "value", False
    if not isinstance(turns, list):
        return _record(rid, source, model=model, error=WRONG_SHAPE)
    out = []
    for turn in turns:
        if not isinstance(turn, dict):
            return _record(rid, source, model=model, error=WRONG_SHAPE)
        role, text = turn.get(key_role), turn.get(key_text)
        if text is None:
            text = ""
        if not isinstance(role, str) or not isinstance(text, str):
            return _record(rid, source, model=model, error=WRONG_SHAPE)
        out.append({"from": role, "value": text})
    return _record(rid, source, model=model, turns=out, clean=clean)


def read_html_page(path: Path, source: str) -> dict:
    """One ShareGPT page -> one raw record (an error reason when the page can't be read)."""
    rid = path.stem
    try:
        data = path.read_bytes()
    except OSError as err:
        logger.warning("Cannot read %s: %s", path, err)
        return _record(rid, source, error=UNREADABLE_FILE)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _record(rid, source, error=NOT_UTF8)
    start = _NEXT_DATA_RE.search(text)
    if start is None:
        return _record(rid, source, error=NO_NEXT_DATA)
    end = _SCRIPT_END_RE.search(text, start.end())
    if end is None:
        return _record(rid, source, error=TRUNCATED)
    try:
        page = json.loads(text[start.end() : end.start()])
    except json.JSONDecodeError:
        return _record(rid, source, error=INVALID_JSON)
    props = page.get("props", {}).get("pageProps", {}) if isinstance(page, dict) else None
    content = props.get("content") if isinstance(props, dict) else None
    if not isinstance(content, dict):
        return _record(rid, source, error=WRONG_SHAPE)
    if props.get("id"):
        rid = str(props["id"])
    return record_from_object({**content, "id": rid}, rid, source)


def _incomplete(err: json.JSONDecodeError, buffer_len: int) -> bool:
    """Whether a decode error may just mean that the buffer ends inside the value."""
    return err.msg.startswith("Unterminated string") or err.pos >= buffer_len - 1


def _iter_json_values(f, path: Path) -> Iterator[tuple[Any, str]]:
    """Top-level values of a JSON file, streaming the elements of a top-level array: ``(value, error)`` pairs."""
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

    if not skip_ws():
        yield None, TRUNCATED  # empty file
        return
    in_array = buf[pos] == "["
    if in_array:
        pos += 1
    first = True
    while True:
        if not skip_ws():
            if in_array:
                yield None, TRUNCATED
            return
        if in_array:
            if buf[pos] == "]":
                return
            if not first:
                if buf[pos] != ",":
                    yield None, INVALID_JSON
                    return
                pos += 1
                if not skip_ws():
                    yield None, TRUNCATED
                    return
        elif not first:
            yield None, INVALID_JSON  # trailing garbage after a single value
            return
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as err:
                if not eof and _incomplete(err, len(buf)) and fill():
                    continue
                yield None, TRUNCATED if eof and _incomplete(err, len(buf)) else INVALID_JSON
                return
            if end == len(buf) and not eof and not isinstance(value, (dict, list, str)) and fill():
                continue  # a number may continue in the next chunk
            break
        pos, first = end, False
        yield value, ""


def iter_json_file(path: Path, source: str) -> Iterator[dict]:
    """Records of a JSON dump (array, single object or JSON Lines), streamed."""
    stem = path.stem
    index = 0
    try:
        with open(path, encoding="utf-8-sig") as f:
            if path.suffix.lower() == ".jsonl":
                for line in f:
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError:
                        yield _record(f"{stem}-{index}", source, error=INVALID_JSON)
                    else:
                        yield record_from_object(obj, f"{stem}-{index}", source)
                    index += 1
                return
            for value, error in _iter_json_values(f, path):
                rid = f"{stem}-{index}"
                if error:
                    logger.warning(
                        "%s: %s after %d records; the rest counts as one dropped record.", path, error, index
                    )
                    yield _record(rid, source, error=error)
                elif index == 0 and isinstance(value, dict) and "props" in value:  # a saved __NEXT_DATA__ blob
                    content = value.get("props", {}).get("pageProps", {}).get("content")
                    yield record_from_object(content, rid, source)
                else:
                    yield record_from_object(value, rid, source)
                index += 1
    except UnicodeDecodeError:
        logger.warning("%s is not UTF-8 after %d records; the rest counts as one dropped record.", path, index)
        yield _record(f"{stem}-{index}", source, error=NOT_UTF8)
    except OSError as err:
        logger.warning("Cannot read %s: %s", path, err)
        yield _record(f"{stem}-{index}", source, error=UNREADABLE_FILE)


def iter_records(files: list[str], root: str) -> Iterator[dict]:
    """Raw records of all ``files`` (paths; ``source`` is each path relative to ``root``)."""
    root_path = Path(root)
    for name in files:
        path = Path(name)
        try:
            source = path.relative_to(root_path).as_posix()
        except ValueError:
            source = path.name
        if path.suffix.lower() in HTML_SUFFIXES:
            yield read_html_page(path, source)
        else:
            yield from iter_json_file(path, source)
