"""Conversations -> embeddings -> UMAP 3D + K-Means -> ``MODEL_TYPE.visualizer.json`` and an explorer web page."""

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
from openchat_hf.visualization.projection import ProjectionConfig, cluster, project_3d

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
    csp: bool = True,
) -> Path:
    """Write the explorer page for visualizer data (``{text, embedding, color}``)."""
    mt = get_model_type(model_type)
    page_data = {
        "title": title or f"{mt.name} conversation embeddings",
        "model_type": mt.name,
        "model_types": model_type_table(),
        "meta": meta or {},
        **({"ids": list(ids)} if ids is not None else {}),
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
    k_note = (
        f"k={clustering.k} chosen by silhouette over k={min(clustering.silhouettes)}..{max(clustering.silhouettes)}."
        if clustering.silhouettes
        else f"k={clustering.k} (given)."
    )
    meta = {
        "source": str(dataset),
        "description": f"{embedded.description} UMAP to 3D; K-Means on the original embeddings, {k_note}",
        "k": clustering.k,
        "silhouettes": {str(k): round(v, 4) for k, v in clustering.silhouettes.items()},
        "embedding_model": embedded.backend_id,
        "long_text": embedded.long_text,
        "num_long": embedded.num_long,
    }
    page = build_embeddings_page(
        data, out_dir / f"{mt.name}.embeddings.html", model_type=mt, meta=meta, ids=[c.id for c in conversations]
    )
    logger.info("Wrote %s and %s.", json_path, page)
    return EmbeddingsPageResult(json_path, page, len(texts), clustering.k)
