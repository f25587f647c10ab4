"""Embeddings -> 3D coordinates (UMAP) and cluster colours (K-Means, k given or chosen by silhouette)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from openchat_hf.visualization.errors import VisualizationError

logger = logging.getLogger(__name__)

# Below this many points UMAP's neighbour graph is meaningless: PCA gives the 3D layout instead.
MIN_UMAP_POINTS = 10


@dataclass
class ProjectionConfig:
    """UMAP and K-Means settings.

    Attributes:
        clusters: the number of K-Means clusters, or ``None`` to choose it by silhouette over ``k_range``.
        k_range: inclusive (min, max) range of k tried by silhouette.
        n_neighbors, min_dist, metric: UMAP settings.
        seed: random seed of UMAP and K-Means (same input, same picture).
        silhouette_sample: points sampled to compute each silhouette score (it is quadratic in the points).
    """

    clusters: int | None = None
    k_range: tuple[int, int] = (2, 12)
    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    seed: int = 42
    silhouette_sample: int = 2000

    def __post_init__(self) -> None:
        if self.clusters is not None and self.clusters < 1:
            raise VisualizationError(f"The number of clusters must be at least 1, got {self.clusters}.")
        if not 2 <= self.k_range[0] <= self.k_range[1]:
            raise VisualizationError(f"k_range must be (min, max) with 2 <= min <= max, got {self.k_range}.")


def project_3d(embeddings: np.ndarray, config: ProjectionConfig | None = None) -> np.ndarray:
    """UMAP of the embeddings to 3 dimensions (PCA for fewer than ``MIN_UMAP_POINTS`` points)."""
    config = config or ProjectionConfig()
    x = np.asarray(embeddings, dtype=np.float32)
    n = len(x)
    if n == 0:
        raise VisualizationError("No embeddings to project.")
    if n < MIN_UMAP_POINTS:
        from sklearn.decomposition import PCA

        logger.info("Only %d points: using PCA instead of UMAP for the 3D layout.", n)
        dims = min(3, n - 1, x.shape[1])  # n points span at most n - 1 dimensions
        coords = PCA(n_components=dims, random_state=config.seed).fit_transform(x) if dims > 0 else np.zeros((n, 0))
        return np.pad(coords, ((0, 0), (0, 3 - coords.shape[1]))).astype(np.float32)
    import umap

    reducer = umap.UMAP(
        n_components=3,
        n_neighbors=min(config.n_neighbors, n - 1),
        min_dist=config.min_dist,
        metric=config.metric,
        random_state=config.seed,
        n_jobs=1,  # a fixed seed makes UMAP single-threaded anyway; saying so silences its warning
        init="spectral" if n > 50 else "random",
    )
    return np.asarray(reducer.fit_transform(x), dtype=np.float32)


# Below this silhouette the clusters are no real structure (Kaufman & Rousseeuw: "no substantial structure").
WEAK_SILHOUETTE = 0.25


@dataclass
class Clustering:
    labels: np.ndarray
    k: int
    silhouettes: dict[int, float]  # k -> score, when k was chosen by silhouette
    silhouette: float | None = None  # the score of the labels returned (None for one cluster)

    @property
    def weak(self) -> bool:
        """True when the silhouette says the clusters are not real structure."""
        return self.silhouette is not None and self.silhouette < WEAK_SILHOUETTE


def cluster(embeddings: np.ndarray, config: ProjectionConfig | None = None) -> Clustering:
    """K-Means labels on the original embeddings; k fixed, or the best silhouette over ``config.k_range``."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    config = config or ProjectionConfig()
    x = np.asarray(embeddings, dtype=np.float32)
    n = len(x)

    def fit(k: int) -> np.ndarray:
        return KMeans(n_clusters=k, n_init=4, random_state=config.seed).fit_predict(x)

    if config.clusters is not None:
        k = min(config.clusters, n)
        if k < config.clusters:
            logger.warning("Asked for %d clusters but there are only %d points: using %d.", config.clusters, n, k)
        labels = fit(k) if k > 1 else np.zeros(n, dtype=int)
        score = None
        if 1 < len(set(labels.tolist())) < n:
            score = float(silhouette_score(x, labels, sample_size=min(config.silhouette_sample, n),
                                           random_state=config.seed))  # fmt: skip
        return Clustering(labels, k, {}, score)
    k_max = min(config.k_range[1], n - 1)
    if k_max < config.k_range[0]:
        logger.info("Too few points (%d) to choose k by silhouette: one cluster.", n)
        return Clustering(np.zeros(n, dtype=int), 1, {})
    scores: dict[int, float] = {}
    best: tuple[float, int, np.ndarray] | None = None
    sample = min(config.silhouette_sample, n)
    for k in range(config.k_range[0], k_max + 1):
        labels = fit(k)
        if len(set(labels.tolist())) < 2:
            continue
        score = float(silhouette_score(x, labels, sample_size=sample, random_state=config.seed))
        scores[k] = score
        if best is None or score > best[0]:
            best = (score, k, labels)
    if best is None:
        return Clustering(np.zeros(n, dtype=int), 1, scores)
    logger.info("Chose k=%d by silhouette (%.3f); scores: %s", best[1], best[0], scores)
    return Clustering(best[2], best[1], scores, best[0])
