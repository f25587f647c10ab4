"""UMAP / PCA layout and K-Means clusters (k given or chosen by silhouette)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from openchat_hf.visualization import ProjectionConfig, VisualizationError, cluster, project_3d


def _blobs(k: int, per: int = 15, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=10.0, size=(k, dim))
    x = np.concatenate([c + rng.normal(scale=0.5, size=(per, dim)) for c in centers])
    return x, np.repeat(np.arange(k), per)


@pytest.mark.parametrize("k", [3, 5])
def test_silhouette_finds_the_number_of_blobs(k):
    x, truth = _blobs(k)
    result = cluster(x, ProjectionConfig(k_range=(2, 8)))
    assert result.k == k
    assert sorted(result.silhouettes) == list(range(2, 9))
    assert max(result.silhouettes, key=result.silhouettes.get) == k
    assert adjusted_rand_score(truth, result.labels) == pytest.approx(1.0)


def test_fixed_k_and_tiny_inputs():
    x, _ = _blobs(4)
    fixed = cluster(x, ProjectionConfig(clusters=2))
    assert fixed.k == 2 and set(fixed.labels.tolist()) == {0, 1} and fixed.silhouettes == {}
    assert cluster(x[:2], ProjectionConfig()).k == 1  # too few points to compare k
    assert cluster(x[:3], ProjectionConfig(clusters=5)).k == 3
    with pytest.raises(VisualizationError, match="at least 1"):
        ProjectionConfig(clusters=0)
    with pytest.raises(VisualizationError, match="k_range"):
        ProjectionConfig(k_range=(1, 4))


def test_few_points_use_pca():
    x, _ = _blobs(2, per=3)
    coords = project_3d(x)
    assert coords.shape == (6, 3) and np.isfinite(coords).all()
    assert np.abs(coords).sum() > 0
    assert project_3d(x[:1]).tolist() == [[0.0, 0.0, 0.0]]
    assert project_3d(x[:2])[:, 1:].tolist() == [[0.0, 0.0], [0.0, 0.0]]  # 2 points: one axis, zero-padded
    with pytest.raises(VisualizationError, match="No embeddings"):
        project_3d(np.zeros((0, 4)))


def test_silhouette_says_when_clusters_are_no_real_structure():
    x, _ = _blobs(3)
    separated = cluster(x, ProjectionConfig(k_range=(2, 6)))
    assert separated.silhouette == max(separated.silhouettes.values()) and not separated.weak
    noise = np.random.default_rng(0).normal(size=(200, 32))  # one round cloud: any split is arbitrary
    blob = cluster(noise, ProjectionConfig(k_range=(2, 6)))
    assert blob.silhouette < 0.25 and blob.weak
    fixed = cluster(noise, ProjectionConfig(clusters=4))
    assert fixed.silhouettes == {} and fixed.silhouette < 0.25 and fixed.weak  # scored when k is given too
    assert cluster(x[:2], ProjectionConfig()).silhouette is None
