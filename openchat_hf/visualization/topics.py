"""Name clusters by their top terms: class-based TF-IDF (c-TF-IDF, as in BERTopic) over each cluster's text.

Each cluster is treated as one document. A term's weight in cluster ``c`` is ``tf(t, c) * log(1 + A / f(t))``:
``tf`` is the share of the cluster's conversations that contain the term, ``f`` the number of conversations that
contain it over all clusters and ``A`` the average cluster size. Counting conversations rather than occurrences keeps
one long conversation that repeats a word from naming its whole cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Words of chat transcripts that name no topic (on top of scikit-learn's English stop words).
CHAT_STOP_WORDS = frozenset(
    "assistant human user system gpt chatgpt ai model answer question questions sure help like just know want "
    "need use using make used thanks thank hello hi please example following also provide way ll ve don doesn "
    "isn didn won let ok okay yes".split()
)


def cluster_terms(texts: Sequence[str], labels: Sequence[int], top_n: int = 4) -> dict[int, list[str]]:
    """The ``top_n`` most distinctive terms of each cluster (``{label: [term, ...]}``; empty lists when none)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    labels = np.asarray(labels)
    clusters = sorted({int(c) for c in labels.tolist()})
    if len(texts) != len(labels):
        raise ValueError("texts and labels must have the same length")
    vectorizer = CountVectorizer(
        binary=True,
        lowercase=True,
        token_pattern=r"(?u)\b[^\W\d_]{3,}\b",  # words of 3+ letters: no numbers, no code punctuation
        stop_words=sorted(ENGLISH_STOP_WORDS | CHAT_STOP_WORDS),
        min_df=2 if len(texts) >= 20 else 1,
    )
    try:
        presence = vectorizer.fit_transform(texts)
    except ValueError:  # no term at all (empty or stop-word-only texts)
        return {c: [] for c in clusters}
    vocab = vectorizer.get_feature_names_out()
    per_cluster = np.vstack([np.asarray(presence[labels == c].sum(axis=0)).ravel() for c in clusters])
    sizes = np.array([(labels == c).sum() for c in clusters], dtype=np.float64)
    tf = per_cluster / sizes[:, None]
    idf = np.log1p(sizes.mean() / np.maximum(per_cluster.sum(axis=0), 1))
    scores = tf * idf
    out = {}
    for row, c in enumerate(clusters):
        # A term must occur in at least two of the cluster's conversations (when it has two) to name it.
        ok = per_cluster[row] >= min(2, sizes[row])
        order = [i for i in np.argsort(-scores[row], kind="stable") if ok[i] and scores[row, i] > 0]
        out[c] = [str(vocab[i]) for i in order[:top_n]]
    return out
