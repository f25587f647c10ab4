"""Visualization: a conversation explorer, an evaluation-results page and a training page, as self-contained pages.

Heavy dependencies (sentence-transformers, umap-learn, scikit-learn, plotly) are imported where they are used.
"""

from openchat_hf.visualization.conversations import Conversation, load_conversations, parse_rendered
from openchat_hf.visualization.embedding import EmbeddingCache, EmbeddingConfig, embed_texts
from openchat_hf.visualization.embeddings_page import (
    EmbeddingsPageConfig,
    EmbeddingsPageResult,
    build_embeddings_page,
    visualize_embeddings,
)
from openchat_hf.visualization.errors import VisualizationError
from openchat_hf.visualization.eval_page import build_eval_page, load_report
from openchat_hf.visualization.projection import ProjectionConfig, cluster, project_3d
from openchat_hf.visualization.topics import cluster_terms
from openchat_hf.visualization.training_page import build_training_page

__all__ = [
    "Conversation",
    "EmbeddingCache",
    "EmbeddingConfig",
    "EmbeddingsPageConfig",
    "EmbeddingsPageResult",
    "ProjectionConfig",
    "VisualizationError",
    "build_embeddings_page",
    "build_eval_page",
    "build_training_page",
    "cluster",
    "cluster_terms",
    "embed_texts",
    "load_conversations",
    "load_report",
    "parse_rendered",
    "project_3d",
    "visualize_embeddings",
]
