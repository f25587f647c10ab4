"""Load conversations to visualize: a clean-conversations dataset, a Hub dataset, or a legacy ``*.text.json`` file.

Every source becomes a list of :class:`Conversation` whose ``text`` is the conversation rendered by the model type's
template (:class:`~openchat_hf.templates.ChatTemplate`, without BOS): the ``text`` field of the original
``visualizer.json`` format. :func:`parse_rendered` splits such a text back into turns by the model type's prefixes and
EOT; the web page does the same in JavaScript (``assets/common.js``).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from openchat_hf.model_types import ModelType, get_model_type, list_model_types
from openchat_hf.templates import ChatTemplate, TemplateError
from openchat_hf.visualization.errors import VisualizationError

logger = logging.getLogger(__name__)

# ShareGPT-style speaker names -> roles (for Hub datasets in the `conversations: [{from, value}]` layout).
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "assistant": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "system": "system",
}
# A leading special token such as "<s>" that legacy texts may start with.
_LEADING_SPECIAL = re.compile(r"^<[^<>\s]{1,32}>")


@dataclass
class Conversation:
    """One conversation: a stable id, its messages, its rendered text and the model that wrote it (when known)."""

    id: str
    text: str
    messages: list[dict[str, str]] = field(default_factory=list)
    model: str | None = None

    @property
    def content(self) -> str:
        """The messages' text without the template's prefixes and tokens."""
        return "\n".join(m.get("content") or "" for m in self.messages) if self.messages else self.text

    @property
    def num_words(self) -> int:
        return len(self.content.split())

    @property
    def num_turns(self) -> int:
        """Turns as MT-bench counts them: the user's messages (1 for a single question and answer)."""
        return sum(m.get("role") == "user" for m in self.messages) or (1 if self.messages else 0)


def renderer(model_type: ModelType | str) -> ChatTemplate:
    """The model type's template without BOS: the text a visualizer shows and embeds."""
    return ChatTemplate(replace(get_model_type(model_type), add_bos=False))


def _prefix_table(model_type: ModelType) -> list[tuple[str, str]]:
    """(prefix, role) pairs to try, this model type's first, then every registered one's; longest prefix first."""
    pairs: list[tuple[str, str]] = []
    for mt in [model_type] + [get_model_type(n) for n in list_model_types() if n != model_type.name]:
        group = [(mt.prefix(role), role) for role in ("system", "user", "assistant")]
        pairs.extend(sorted((p for p in group if p not in pairs), key=lambda p: -len(p[0])))
    return pairs


def parse_rendered(text: str, model_type: ModelType | str = "openchat") -> list[dict[str, str]]:
    """Split a rendered conversation into ``{"role", "content"}`` turns (role ``"text"`` when no prefix matches)."""
    mt = get_model_type(model_type)
    table = _prefix_table(mt)
    turns: list[dict[str, str]] = []
    for i, segment in enumerate(text.split(mt.eot_token)):
        if i == 0 and not any(segment.startswith(p) for p, _ in table):
            segment = _LEADING_SPECIAL.sub("", segment, count=1)
        if not segment.strip():
            continue
        for prefix, role in table:
            if segment.startswith(prefix):
                turns.append({"role": role, "content": segment[len(prefix) :]})
                break
        else:
            turns.append({"role": "text", "content": segment})
    return turns


def _messages_of(row: dict[str, Any]) -> list[dict[str, str]] | None:
    """The ``messages`` of a dataset row, from the clean format or a ShareGPT ``conversations``/``items`` list."""
    if isinstance(row.get("messages"), list):
        return [{"role": m.get("role"), "content": m.get("content") or ""} for m in row["messages"]]
    for key in ("conversations", "items"):
        if isinstance(row.get(key), list):
            out = []
            for m in row[key]:
                role = SHAREGPT_ROLES.get(str(m.get("from", "")).lower())
                if role is None:
                    return None
                out.append({"role": role, "content": m.get("value") or ""})
            return out
    return None


def conversations_from_rows(rows: Any, model_type: ModelType | str = "openchat") -> list[Conversation]:
    """Render dataset rows (clean ``messages`` or ShareGPT ``conversations``) with the model type's template."""
    template = renderer(model_type)
    out: list[Conversation] = []
    skipped = 0
    for i, row in enumerate(rows):
        messages = _messages_of(row)
        try:
            if not messages:
                raise TemplateError("no messages")
            text = template.render(messages).text
        except TemplateError as err:
            skipped += 1
            logger.debug("Skipping row %d: %s", i, err)
            continue
        model = row.get("model")
        out.append(Conversation(id=str(row.get("id", i)), text=text, messages=messages,
                                model=str(model) if model not in (None, "") else None))  # fmt: skip
    if skipped:
        logger.warning("Skipped %d rows that are not valid conversations.", skipped)
    return out


def conversations_from_texts(texts: Any, model_type: ModelType | str = "openchat") -> list[Conversation]:
    """Legacy ``MODEL_TYPE.*.text.json`` content (a list of rendered texts) -> conversations."""
    mt = get_model_type(model_type)
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise VisualizationError(
            "A legacy text file must be a JSON list of rendered conversation texts (MODEL_TYPE.train.text.json); "
            "token-id files (MODEL_TYPE.train.json) cannot be visualized, use the .text.json next to them."
        )
    out = [Conversation(id=str(i), text=t, messages=parse_rendered(t, mt)) for i, t in enumerate(texts)]
    parsed = sum(any(m["role"] != "text" for m in c.messages) for c in out)
    if out and parsed == 0:
        raise VisualizationError(
            f"None of the {len(out)} texts contains {mt.name!r} turn prefixes ({mt.user_prefix!r}, "
            f"{mt.assistant_prefix!r}) and {mt.eot_token!r}; pass the --model-type the file was rendered with."
        )
    return out


def load_conversations(
    source: str | Path, model_type: ModelType | str = "openchat", *, split: str = "train"
) -> list[Conversation]:
    """Conversations from a clean dataset folder, a legacy ``.text.json`` file, or a Hub dataset id."""
    path = Path(source)
    if path.is_file():
        if not path.name.endswith(".json"):
            raise VisualizationError(f"{path}: expected a legacy MODEL_TYPE.*.text.json file or a dataset folder.")
        try:
            texts = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise VisualizationError(f"{path}: not a readable JSON file ({err}).") from err
        conversations = conversations_from_texts(texts, model_type)
    elif path.is_dir():
        conversations = conversations_from_rows(_load_disk_dataset(path), model_type)
    else:
        conversations = conversations_from_rows(_load_hub_dataset(str(source), split), model_type)
    if not conversations:
        raise VisualizationError(f"{source}: no conversations to visualize.")
    logger.info("Loaded %d conversations from %s.", len(conversations), source)
    return conversations


def _load_disk_dataset(path: Path) -> Any:
    import datasets

    if (path / "clean").is_dir() and not (path / "dataset_info.json").exists():
        path = path / "clean"  # the pipeline's output folder: use its clean conversations
    try:
        data = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as err:
        raise VisualizationError(
            f"{path}: not a saved dataset ({err}). Pass the data pipeline's OUT/clean folder, a legacy "
            "MODEL_TYPE.*.text.json file, or a Hub dataset id."
        ) from err
    if isinstance(data, datasets.DatasetDict):
        data = datasets.concatenate_datasets(list(data.values()))
    return _check_columns(data, str(path))


def _load_hub_dataset(name: str, split: str) -> Any:
    import datasets

    try:
        data = datasets.load_dataset(name, split=split)
    except Exception as err:  # noqa: BLE001 - datasets raises many types (offline, missing, bad split)
        raise VisualizationError(
            f"{name!r} is not a local file or folder, and loading it as a Hub dataset failed: {err}"
        ) from err
    return _check_columns(data, name)


def _check_columns(data: Any, name: str) -> Any:
    columns = set(data.column_names)
    if not columns & {"messages", "conversations", "items"}:
        hint = (
            " It looks like a tokenized dataset: pass the clean folder (OUT/clean)." if "input_ids" in columns else ""
        )
        raise VisualizationError(
            f"{name}: needs a 'messages' (or ShareGPT 'conversations') column, found {sorted(columns)}.{hint}"
        )
    return data
