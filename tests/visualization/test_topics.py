"""Cluster names by c-TF-IDF, on real Vicuna-bench questions and GPT-3.5 answers."""

from __future__ import annotations

from test_embeddings_e2e import vicuna_conversations

from openchat_hf.visualization.topics import cluster_terms


def test_true_topics_are_named_by_their_own_words():
    rows = vicuna_conversations(("coding", "math", "writing"))
    cats = sorted({r["source"] for r in rows})
    labels = [cats.index(r["source"]) for r in rows]
    texts = [" ".join(m["content"] for m in r["messages"]) for r in rows]
    terms = cluster_terms(texts, labels, top_n=5)
    assert set(terms) == {0, 1, 2}
    named = {cats[c]: t for c, t in terms.items()}
    assert {"def", "function", "code", "return", "implement"} & set(named["coding"]), named
    assert {"equation", "solve", "value", "area", "given"} & set(named["math"]), named
    assert {"write", "dear", "letter", "blog", "email"} & set(named["writing"]), named
    # Distinct names: a term names at most one cluster, and chat filler never does.
    flat = [t for ts in terms.values() for t in ts]
    assert len(flat) == len(set(flat))
    assert not {"assistant", "human", "user", "answer", "sure"} & set(flat)


def test_one_long_conversation_does_not_name_its_cluster():
    texts = ["zebra " * 200 + "garden flowers", "garden soil flowers", "garden watering flowers", "code python"] * 6
    labels = [0, 0, 0, 1] * 6
    names = cluster_terms(texts, labels, top_n=2)
    assert names[0] == ["flowers", "garden"] or names[0] == ["garden", "flowers"]
    assert names[1] == ["code", "python"]


def test_empty_and_stop_word_texts_get_no_names():
    assert cluster_terms(["", "the and of"], [0, 1]) == {0: [], 1: []}
    # A term must be in two of its cluster's conversations to name it.
    assert cluster_terms(["ant ant bee", "bee"], [5, 5]) == {5: ["bee"]}
    assert cluster_terms(["ant", "bee", "ant bee"], [0, 1, 1]) == {0: ["ant"], 1: ["bee"]}
