"""`openchat-hf visualize embeddings` end to end: a real clean dataset on disk, the bundled model, UMAP, K-Means."""

from __future__ import annotations

import json
import logging
import re

import datasets
import numpy as np
import pytest
from viz_helpers import save_artifact

from openchat_hf.cli import main
from openchat_hf.resources import VICUNA_ANSWERS_DIR, VICUNA_BENCH_DIR, read_jsonl

pytestmark = pytest.mark.slow


TOPICS = ("coding", "fermi", "counterfactual")


def vicuna_conversations(categories=TOPICS) -> list[dict]:
    """Vicuna-bench questions of some categories with GPT-3.5's answers, as clean conversations (real text)."""
    answers = {row["question_id"]: row["text"] for row in read_jsonl(VICUNA_ANSWERS_DIR / "answer_gpt35.jsonl")}
    return [
        {
            "id": f"vicuna-{q['question_id']}",
            "model": "Model: GPT-3.5",
            "messages": [
                {"role": "user", "content": q["turns"][0]},
                {"role": "assistant", "content": answers[q["question_id"]]},
            ],
            "source": q["category"],
        }
        for q in read_jsonl(VICUNA_BENCH_DIR / "question.jsonl")
        if categories is None or q["category"] in categories
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("viz_e2e")
    rows = vicuna_conversations()
    datasets.Dataset.from_list(rows).save_to_disk(str(root / "data" / "clean"))
    argv = ["visualize", "embeddings", str(root / "data"), str(root / "out"), "--cache-dir", str(root / "cache"),
            "--long-text", "truncate"]  # fmt: skip
    assert main(argv) == 0
    return root, rows, argv


def test_outputs_follow_the_original_format(run):
    root, rows, _ = run
    data = json.loads((root / "out" / "openchat.visualizer.json").read_text(encoding="utf-8"))
    assert set(data) == {"text", "embedding", "color"}
    assert len(data["text"]) == len(data["embedding"]) == len(data["color"]) == len(rows)
    assert data["text"][0] == "Human: " + rows[0]["messages"][0]["content"] + "<|end_of_turn|>Assistant: " + (
        rows[0]["messages"][1]["content"] + "<|end_of_turn|>"
    )
    coords = np.array(data["embedding"])
    assert coords.shape == (len(rows), 3) and np.isfinite(coords).all() and coords.std(axis=0).min() > 0.1
    k = len(set(data["color"]))
    assert 2 <= k <= 12
    # Clusters follow the three topics: each topic's conversations mostly share a cluster of their own.
    for topic in TOPICS:
        colors = [c for c, r in zip(data["color"], rows) if r["source"] == topic]
        main_cluster = max(set(colors), key=colors.count)
        members = [r["source"] for c, r in zip(data["color"], rows) if c == main_cluster]
        assert colors.count(main_cluster) >= 6 and members.count(topic) / len(members) >= 0.8, (topic, data["color"])
    html = (root / "out" / "openchat.embeddings.html").read_text(encoding="utf-8")
    assert f"K-Means on the original embeddings, k={k} chosen by silhouette over k=2..12" in html
    assert "were truncated to their first window" in html
    payload = json.loads(re.search(r'id="oc-data">(.*?)</script>', html, re.S).group(1))
    meta = payload["meta"]
    assert meta["source"] == "data" and str(root) not in json.dumps(meta)
    assert set(meta["cluster_terms"]) == {str(c) for c in set(data["color"])}
    assert all(1 <= len(t) <= 4 for t in meta["cluster_terms"].values())
    assert meta["silhouette"] == max(meta["silhouettes"].values())
    assert meta["weak_structure"] == (meta["silhouette"] < 0.25)
    assert payload["attributes"]["model"] == ["Model: GPT-3.5"] * len(rows)
    assert payload["attributes"]["turns"] == [1] * len(rows)
    assert payload["attributes"]["words"][0] == len(" ".join(m["content"] for m in rows[0]["messages"]).split())


def test_rerun_reads_the_cache(run, caplog):
    root, rows, argv = run
    with caplog.at_level(logging.INFO, logger="openchat_hf.visualization.embedding"):
        argv = [str(root / "out4") if a == str(root / "out") else a for a in argv]
        assert main([*argv, "--clusters", "4"]) == 0
    assert f"0 windows computed, {len(rows)} from cache" in caplog.text
    data = json.loads((root / "out4" / "openchat.visualizer.json").read_text(encoding="utf-8"))
    assert sorted(set(data["color"])) == [0, 1, 2, 3]
    html = (root / "out4" / "openchat.embeddings.html").read_text(encoding="utf-8")
    assert "k=4 (given)" in html
    meta = json.loads(re.search(r'id="oc-data">(.*?)</script>', html, re.S).group(1))["meta"]
    assert isinstance(meta["silhouette"], float) and meta["silhouettes"] == {}  # scored even when k is given


@pytest.mark.browser
def test_generated_page_in_the_browser(run, served, open_page):
    root, rows, _ = run
    (served.root / "page.html").write_bytes((root / "out" / "openchat.embeddings.html").read_bytes())
    watch = open_page(served.url("page.html"), "() => window.ocViz && window.ocViz.renderedAt !== null")
    page = watch.page
    data = json.loads((root / "out" / "openchat.visualizer.json").read_text(encoding="utf-8"))
    assert page.locator("#legend .chip").count() == len(set(data["color"]))
    assert "chosen by silhouette" in page.locator("#how-text").text_content()
    header = page.inner_text("#meta")
    assert header.startswith(f"Each dot is one of the {len(rows)} conversations of “data”.")
    assert str(root) not in page.inner_text("header") and "K-Means" not in header
    # Groups are named by their top terms: the coding questions' group by code words.
    coding = [c for c, r in zip(data["color"], rows) if r["source"] == "coding"]
    chip = page.locator(f"#legend .chip[data-cluster='{max(set(coding), key=coding.count)}']").inner_text()
    assert {"def", "return", "function", "code", "implement", "python", "program"} & set(
        chip.replace(",", " ").split()
    ), chip
    page.fill("#search", "Python")
    page.wait_for_function("() => document.getElementById('search-status').textContent.endsWith('es')")
    first = int(page.locator("#results li").first.get_attribute("data-index"))
    assert "python" in json.dumps(rows[first]).lower()
    page.locator("#results li").first.click()
    assert page.locator("#conversation .turn").count() == 2
    watch.assert_clean()
    save_artifact(page, "embeddings-vicuna.png")
