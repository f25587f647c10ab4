"""Conversations -> embeddings -> UMAP 3D + K-Means -> ``MODEL_TYPE.visualizer.json`` and an explorer web page.

The page explains itself in plain words (what a dot, a distance and a colour mean), names each cluster by its top
terms (:mod:`~openchat_hf.visualization.topics`), colours by cluster, model, length or number of turns, and says so
plainly when the silhouette shows the clusters are no real structure. Technical details sit in a "How this map was
made" box; no machine path is shown.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from openchat_hf.model_types import ModelType, get_model_type, list_model_types
from openchat_hf.visualization.conversations import Conversation, load_conversations
from openchat_hf.visualization.embedding import Backend, EmbeddingConfig, embed_texts
from openchat_hf.visualization.errors import VisualizationError
from openchat_hf.visualization.html import asset, plotly_js, render_page, write_page
from openchat_hf.visualization.projection import WEAK_SILHOUETTE, ProjectionConfig, cluster, project_3d
from openchat_hf.visualization.topics import cluster_terms

logger = logging.getLogger(__name__)


@dataclass
class EmbeddingsPageConfig:
    """Everything ``openchat-hf visualize embeddings`` does, as one config."""

    model_type: str = "openchat"
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    max_points: int | None = None  # a seeded random sample of at most this many conversations
    split: str = "train"  # split of a Hub dataset

    def __post_init__(self) -> None:
        if self.max_points is not None and self.max_points < 1:
            raise VisualizationError(f"max_points must be at least 1, got {self.max_points}.")


@dataclass
class EmbeddingsPageResult:
    visualizer_json: Path
    page: Path
    num_points: int
    k: int


def model_type_table() -> dict[str, dict[str, str]]:
    """Prefixes and EOT of every registered model type (the page labels turns of any of them)."""
    table = {}
    for name in list_model_types():
        mt = get_model_type(name)
        table[name] = {"user": mt.user_prefix, "assistant": mt.assistant_prefix, "system": mt.system_prefix,
                       "eot": mt.eot_token}  # fmt: skip
    return table


def visualizer_data(texts: list[str], coords: np.ndarray, colors: np.ndarray) -> dict[str, list]:
    """The original ``visualizer.json`` format: ``{text, embedding: [[x, y, z]], color}``."""
    if not len(texts) == len(coords) == len(colors):
        raise VisualizationError("texts, coordinates and colours must have the same length.")
    return {
        "text": list(texts),
        "embedding": [[round(float(v), 5) for v in row] for row in np.asarray(coords)],
        "color": [int(c) for c in colors],
    }


def build_embeddings_page(
    data: dict[str, Any],
    out_path: str | Path,
    *,
    model_type: str | ModelType = "openchat",
    title: str | None = None,
    meta: dict[str, Any] | None = None,
    ids: list[str] | None = None,
    attributes: dict[str, list] | None = None,
    csp: bool = True,
) -> Path:
    """Write the explorer page for visualizer data (``{text, embedding, color}``).

    ``attributes`` are optional per-point lists the page can colour by: ``model`` (str or None), ``words`` and
    ``turns`` (ints); the page computes words and turns from the text when they are missing.
    """
    mt = get_model_type(model_type)
    n = len(data["text"])
    for name, values in (attributes or {}).items():
        if len(values) != n:
            raise VisualizationError(f"attribute {name!r} has {len(values)} values for {n} conversations.")
    page_data = {
        "title": title or "Conversation map",
        "model_type": mt.name,
        "model_types": model_type_table(),
        "meta": meta or {},
        **({"ids": list(ids)} if ids is not None else {}),
        **({"attributes": attributes} if attributes else {}),
        **data,
    }
    html = render_page(
        asset("embeddings.html"),
        title=page_data["title"],
        data=page_data,
        scripts=[plotly_js(), asset("common.js") + "\n" + asset("embeddings.js")],
        csp=csp,
    )
    return write_page(out_path, html)


def source_name(source: str | Path) -> str:
    """A dataset's name for people: a folder's or file's name (never its full path), or the Hub id as given."""
    path = Path(source)
    if not path.exists():
        return str(source)
    if path.name == "clean" and path.parent.name:
        return path.parent.name  # the data pipeline's OUT/clean: name it by OUT
    if path.is_dir() and (path / "clean").is_dir():
        return path.name
    return path.name.removesuffix(".json").removesuffix(".text")


def _sample(conversations: list[Conversation], max_points: int | None, seed: int) -> list[Conversation]:
    if max_points is None or len(conversations) <= max_points:
        return conversations
    keep = np.sort(np.random.default_rng(seed).choice(len(conversations), size=max_points, replace=False))
    logger.info("Sampled %d of %d conversations (--max-points).", max_points, len(conversations))
    return [conversations[i] for i in keep]


def visualize_embeddings(
    dataset: str | Path,
    out_dir: str | Path,
    config: EmbeddingsPageConfig | None = None,
    *,
    backend: Backend | None = None,
) -> EmbeddingsPageResult:
    """Load, embed, project and cluster conversations; write ``OUT/MODEL_TYPE.visualizer.json`` and the page."""
    config = config or EmbeddingsPageConfig()
    mt = get_model_type(config.model_type)
    conversations = _sample(load_conversations(dataset, mt, split=config.split), config.max_points,
                            config.projection.seed)  # fmt: skip
    texts = [c.text for c in conversations]
    embedded = embed_texts(texts, config.embedding, backend)
    logger.info("Projecting %d embeddings to 3D and clustering.", len(texts))
    coords = project_3d(embedded.embeddings, config.projection)
    clustering = cluster(embedded.embeddings, config.projection)
    data = visualizer_data(texts, coords, clustering.labels)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{mt.name}.visualizer.json"
    json_path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    if clustering.silhouettes:
        k_note = f"k={clustering.k} chosen by silhouette over k={min(clustering.silhouettes)}..{max(clustering.silhouettes)}."
    else:
        k_note = f"k={clustering.k} (given)."
    terms = cluster_terms([c.content for c in conversations], clustering.labels)
    models = [c.model for c in conversations]
    name = source_name(dataset)
    meta = {
        "source": name,
        "description": f"{embedded.description} UMAP to 3D; K-Means on the original embeddings, {k_note}",
        "k": clustering.k,
        "silhouette": None if clustering.silhouette is None else round(clustering.silhouette, 4),
        "weak_structure": clustering.weak,
        "weak_threshold": WEAK_SILHOUETTE,
        "silhouettes": {str(k): round(v, 4) for k, v in clustering.silhouettes.items()},
        "cluster_terms": {str(k): v for k, v in terms.items()},
        "embedding_model": embedded.backend_id,
        "long_text": embedded.long_text,
        "num_long": embedded.num_long,
    }
    attributes = {"words": [c.num_words for c in conversations], "turns": [c.num_turns for c in conversations]}
    if any(models):
        attributes["model"] = models
    page = build_embeddings_page(
        data,
        out_dir / f"{mt.name}.embeddings.html",
        model_type=mt,
        title=f"Conversation map: {name}",
        meta=meta,
        ids=[c.id for c in conversations],
        attributes=attributes,
    )
    logger.info("Wrote %s and %s.", json_path, page)
    return EmbeddingsPageResult(json_path, page, len(texts), clustering.k)
