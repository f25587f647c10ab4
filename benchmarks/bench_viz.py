"""Visualization benchmarks: the embedding step on the bundled sample, and first render of a 10,000-point page.

    .venv/bin/python benchmarks/bench_viz.py [--points 10000] [--repeats 3] [--skip-embed] [--skip-render]

1. Embedding (CPU, bundled all-MiniLM-L6-v2): the bundled ShareGPT sample run through the data pipeline (clean
   step only), embedded by ``embed_texts`` (windows, batches of 64, cache) against a baseline of one
   ``model.encode`` call per conversation (no batching, silent truncation at 256 tokens); then the cached re-run.
2. Page: first render of the explorer page with N points in headless Chromium (load event + next animation frame,
   and the page's own ``renderedAt``), against the page ``plotly`` itself writes for the same 3D scatter
   (``fig.write_html(include_plotlyjs=True)``); plus a search over every text, a click -> conversation and a switch
   of the colouring to length. The page carries what ``visualize embeddings`` writes: named groups and per-point
   model / length / turns.

Prints a table of ratios against the baselines measured in the same process.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
WORDS = ("model data train token python code answer question river music cloud planet recipe garden "
         "history market energy doctor travel language").split()  # fmt: skip


def sample_texts() -> tuple[list[str], str]:
    """Rendered conversations of the bundled ShareGPT sample (through the data pipeline's clean step)."""
    from openchat_hf.resources import SAMPLE_SHAREGPT_DIR
    from openchat_hf.visualization import load_conversations

    try:
        from openchat_hf.data import PipelineConfig, run_pipeline

        out = Path(tempfile.mkdtemp(prefix="bench_viz_"))
        run_pipeline(SAMPLE_SHAREGPT_DIR, out, PipelineConfig(tokenizer=None, filter_models=(), decontaminate=False))
        conversations = load_conversations(out / "clean")
        return [c.text for c in conversations], f"bundled ShareGPT sample ({SAMPLE_SHAREGPT_DIR.name}, clean step)"
    except Exception as err:  # noqa: BLE001 - the data area may be mid-change; fall back to the Vicuna answers
        logging.warning("Data pipeline unavailable (%s): using the bundled Vicuna-bench answers instead.", err)
        from openchat_hf.resources import VICUNA_ANSWERS_DIR, VICUNA_BENCH_DIR, read_jsonl
        from openchat_hf.visualization.conversations import renderer

        answers = {r["question_id"]: r["text"] for r in read_jsonl(VICUNA_ANSWERS_DIR / "answer_gpt35.jsonl")}
        template = renderer("openchat")
        texts = [
            template.render(
                [
                    {"role": "user", "content": q["turns"][0]},
                    {"role": "assistant", "content": answers[q["question_id"]]},
                ]
            ).text
            for q in read_jsonl(VICUNA_BENCH_DIR / "question.jsonl")
        ]
        return texts, "bundled Vicuna-bench questions + GPT-3.5 answers"


def bench_embedding() -> list[tuple[str, float, str]]:
    from openchat_hf.visualization import EmbeddingConfig, embed_texts
    from openchat_hf.visualization.embedding import LocalBackend

    texts, source = sample_texts()
    chars = sum(map(len, texts))
    print(f"embedding: {len(texts)} conversations, {chars / 1e3:.0f}K characters from the {source}")
    t = time.perf_counter()
    backend = LocalBackend()
    load_s = time.perf_counter() - t

    t = time.perf_counter()
    for text in texts:  # baseline: one call per conversation, the model's silent truncation
        backend.model.encode([text], show_progress_bar=False)
    naive_s = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as cache:
        config = EmbeddingConfig(cache_dir=Path(cache))
        t = time.perf_counter()
        cold = embed_texts(texts, config, backend=backend)
        cold_s = time.perf_counter() - t
        t = time.perf_counter()
        warm = embed_texts(texts, config, backend=backend)
        warm_s = time.perf_counter() - t
    assert warm.num_computed == 0
    windows = cold.num_computed
    return [
        ("model load (bundled all-MiniLM-L6-v2)", load_s, "-"),
        ("baseline: encode one conversation at a time (truncated at 256 tokens)", naive_s, "1.00"),
        (f"embed_texts, chunked ({windows} windows, batch 64, cold cache)", cold_s, f"{naive_s / cold_s:.2f}x faster"),
        ("embed_texts re-run (all from cache)", warm_s, f"{naive_s / warm_s:.0f}x faster"),
    ]


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        q = " ".join(rng.choice(WORDS, size=int(rng.integers(8, 30))))
        a = " ".join(rng.choice(WORDS, size=int(rng.integers(40, 200))))
        out.append(f"Human: conversation {i}: {q}?<|end_of_turn|>Assistant: {a}.<|end_of_turn|>")
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(root: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


FIRST_FRAME = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now()))))"


def bench_render(points: int, repeats: int) -> list[tuple[str, float, str]]:
    import plotly.graph_objects as go
    from playwright.sync_api import sync_playwright

    from openchat_hf.visualization.embeddings_page import build_embeddings_page, visualizer_data

    rng = np.random.default_rng(0)
    texts = _texts(points)
    colors = rng.integers(0, 12, size=points)
    coords = rng.normal(size=(points, 3)) + colors[:, None]
    root = Path(tempfile.mkdtemp(prefix="bench_viz_page_"))
    # As `visualize embeddings` writes it: named groups and per-point model / length / turns to colour by.
    meta = {
        "source": "bench",
        "silhouette": 0.08,
        "cluster_terms": {str(c): [WORDS[c], WORDS[c + 1]] for c in range(12)},
    }
    attributes = {"words": [len(t.split()) for t in texts], "turns": [1 + i % 3 for i in range(points)],
                  "model": [f"Model: GPT-{3 + i % 2}" for i in range(points)]}  # fmt: skip
    build_embeddings_page(visualizer_data(texts, coords, colors), root / "ours.html", meta=meta, attributes=attributes)
    fig = go.Figure(
        [
            go.Scatter3d(
                x=coords[colors == c, 0],
                y=coords[colors == c, 1],
                z=coords[colors == c, 2],
                mode="markers",
                marker={"size": 3},
                hovertext=[t[:160] for t, k in zip(texts, colors) if k == c],
                name=str(c),
            )
            for c in range(12)
        ]  # fmt: skip
    )
    fig.write_html(root / "plotly.html", include_plotlyjs=True)
    sizes = {name: (root / name).stat().st_size / 1e6 for name in ("ours.html", "plotly.html")}
    print(
        f"page: {points} points; ours {sizes['ours.html']:.1f} MB, plotly's write_html {sizes['plotly.html']:.1f} MB"
    )
    server = _serve(root)
    base = f"http://127.0.0.1:{server.server_port}"
    results: dict[str, list[float]] = {"plotly": [], "ours": [], "ours_rendered": [], "search": [], "click": [],
                                       "colour": []}  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(repeats):
            for name in ("plotly", "ours"):
                page = browser.new_page(viewport={"width": 1400, "height": 850})
                page.goto(f"{base}/{name}.html", wait_until="load", timeout=180_000)
                if name == "ours":
                    page.wait_for_function("() => window.ocViz.renderedAt !== null", timeout=180_000)
                results[name].append(page.evaluate(FIRST_FRAME))
                if name == "ours":
                    results["ours_rendered"].append(page.evaluate("window.ocViz.renderedAt"))
                    print(
                        "  page timings (ms since navigation):",
                        {k: round(v) for k, v in page.evaluate("window.ocViz.timings").items()},
                    )
                    results["search"].append(page.evaluate(
                        "() => { const t = performance.now(); window.ocViz.search('river music'); return performance.now() - t; }"))  # fmt: skip
                    results["click"].append(page.evaluate(
                        "() => { const t = performance.now(); window.ocViz.showConversation(4242); return performance.now() - t; }"))  # fmt: skip
                    results["colour"].append(page.evaluate(
                        "async () => { const t = performance.now(); await window.ocViz.setColourMode('words'); return performance.now() - t; }"))  # fmt: skip
                page.close()
        browser.close()
    server.shutdown()
    med = {k: statistics.median(v) / 1000 for k, v in results.items()}
    return [
        (f"baseline: plotly write_html page, load + first frame ({points} pts)", med["plotly"], "1.00"),
        ("explorer page, load + first frame", med["ours"], f"{med['ours'] / med['plotly']:.2f}x the baseline time"),
        ("explorer page, plot rendered (ocViz.renderedAt)", med["ours_rendered"], "-"),
        (f"search over {points} texts", med["search"], "-"),
        ("click -> conversation pane", med["click"], "-"),
        ("colour by length (re-draw every point)", med["colour"], "-"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-embed", action="store_true")
    parser.add_argument("--skip-render", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    if not args.skip_embed:
        rows += bench_embedding()
    if not args.skip_render:
        rows += bench_render(args.points, args.repeats)
    width = max(len(r[0]) for r in rows)
    print(f"\n| {'measure'.ljust(width)} | seconds | ratio |")
    print(f"|{'-' * (width + 2)}|--------:|------:|")
    for name, seconds, ratio in rows:
        print(f"| {name.ljust(width)} | {seconds:7.3f} | {ratio} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
