"""The conversation-embedding explorer in headless Chromium, served from a loopback HTTP server."""

from __future__ import annotations

import json

import numpy as np
import pytest
from viz_helpers import HOSTILE_ASSISTANT, HOSTILE_USER, rendered, sample_messages, save_artifact

from openchat_hf.visualization.embeddings_page import build_embeddings_page, visualizer_data

pytestmark = pytest.mark.browser
READY = "() => window.ocViz && window.ocViz.renderedAt !== null"
TURNS = (
    "els => els.map(e => [e.className.replace('turn role-', ''), e.querySelector('.turn-prefix')?.textContent ?? ''])"
)


def _data(texts: list[str], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    colors = np.arange(len(texts)) % 3
    coords = rng.normal(size=(len(texts), 3)) + colors[:, None] * 3.0
    return visualizer_data(texts, coords, colors)


def _click(page, curve: int, point: int) -> None:
    """Emit plotly's click event for one point of one trace, as a mouse click on it would."""
    page.evaluate(
        "([c, p]) => document.getElementById('plot').emit('plotly_click', {points: [{curveNumber: c, pointNumber: p}]})",
        [curve, point],
    )


@pytest.mark.parametrize("model_type", ["openchat", "opencoder"])
def test_click_and_search(served, open_page, model_type):
    messages = sample_messages() * 4  # 12 conversations, 3 clusters
    data = _data(rendered(messages, model_type))
    build_embeddings_page(data, served.root / "e.html", model_type=model_type, ids=[f"c{i}" for i in range(12)])
    watch = open_page(served.url("e.html"), READY)
    page = watch.page

    legend = page.inner_text("#legend")
    for cluster in range(3):
        assert f"Group {cluster} ({data['color'].count(cluster)})" in legend

    # The second point of cluster 1's trace is the second conversation coloured 1.
    expected = [i for i, c in enumerate(data["color"]) if c == 1][1]
    _click(page, 1, 1)
    pane = page.locator("#conversation")
    assert pane.locator(".conversation").get_attribute("data-index") == str(expected)
    assert f"id c{expected}" in pane.inner_text()
    turns = pane.locator(".turn").evaluate_all(TURNS)
    prefixes = {"openchat": {"system": "System:", "user": "Human:", "assistant": "Assistant:"},
                "opencoder": {"system": "System:", "user": "User:", "assistant": "Assistant:"}}[model_type]  # fmt: skip
    assert turns == [[m["role"], prefixes[m["role"]]] for m in messages[expected]]
    bodies = pane.locator(".turn-body").all_inner_texts()
    users = [m["content"] for m in messages[expected] if m["role"] == "user"]
    assert [b.strip() for b, m in zip(bodies, messages[expected]) if m["role"] == "user"] == users
    if expected % 3 == 1:  # the aardvark conversation renders its Markdown list as a list
        assert pane.locator("ol li").count() == 2

    page.fill("#search", "AARDVARK")
    page.wait_for_function("() => document.getElementById('search-status').textContent.includes('match')")
    matches = [i for i, m in enumerate(messages) if "aardvark" in json.dumps(m).lower()]
    assert page.inner_text("#search-status") == f"{len(matches)} matches"
    items = page.locator("#results li")
    assert [int(x) for x in items.evaluate_all("els => els.map(e => e.dataset.index)")] == matches
    search_trace = page.evaluate(
        "(() => { const gd = document.getElementById('plot'); return gd.data[gd.data.length - 2].customdata; })()"
    )
    assert search_trace == matches
    items.nth(1).click()
    assert pane.locator(".conversation").get_attribute("data-index") == str(matches[1])
    assert "aardvark" in pane.inner_text()

    page.fill("#search", "no such words anywhere")
    page.wait_for_function("() => document.getElementById('search-status').textContent === '0 matches'")
    watch.assert_clean()
    if model_type == "openchat":
        page.fill("#search", "python")
        page.wait_for_function("() => document.getElementById('search-status').textContent.endsWith('matches')")
        _click(page, 0, 0)
        save_artifact(page, "embeddings.png")


@pytest.mark.parametrize("csp", [True, False], ids=["with-csp", "without-csp"])
def test_hostile_conversation_renders_as_text(served, open_page, csp):
    """Without the CSP too: the rendering alone must keep hostile text inert."""
    hostile = [{"role": "user", "content": HOSTILE_USER}, {"role": "assistant", "content": HOSTILE_ASSISTANT}]
    texts = rendered([hostile] + sample_messages())
    data = _data(texts)
    build_embeddings_page(data, served.root / "h.html", title="<script>window.__pwned='title'</script>", csp=csp)
    watch = open_page(served.url("h.html"), READY)
    page = watch.page
    assert page.evaluate("document.querySelectorAll('script').length") == 3  # data, plotly.js, page script
    assert page.title() == "<script>window.__pwned='title'</script>"
    _click(page, 0, 0)  # conversation 0 is the first point of cluster 0
    pane = page.locator("#conversation")
    assert pane.locator(".conversation").get_attribute("data-index") == "0"
    text = pane.inner_text()
    assert "<script>window.__pwned = 'script'</script>" in text
    assert "<img src=x onerror=" in text
    assert "[click me](javascript:window.__pwned='link')" in text
    code = pane.locator("pre code").inner_text()
    assert "</script><script>window.__pwned = 'fence'</script>" in code
    assert pane.locator("img, script, iframe, object, embed, svg").count() == 0
    hrefs = pane.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert hrefs == ["https://example.com/docs"]
    assert "[image: img]" in text  # images are never loaded
    hover = page.evaluate("document.getElementById('plot').data[0].hovertext[0]")
    assert "&lt;script&gt;" in hover and "<script" not in hover
    page.mouse.move(300, 300)
    page.locator("#conversation b, #conversation strong").evaluate_all(
        "els => els.forEach(e => e.dispatchEvent(new MouseEvent('mouseover')))"
    )
    assert page.evaluate("window.__pwned") is None
    watch.assert_clean()
    save_artifact(page, f"embeddings-hostile-{'csp' if csp else 'nocsp'}.png")


def test_dropped_visualizer_json_replaces_the_data(served, open_page, tmp_path):
    build_embeddings_page(_data(rendered(sample_messages())), served.root / "d.html")
    watch = open_page(served.url("d.html"), READY)
    page = watch.page
    dropped = _data(rendered(sample_messages() * 3, "opencoder"), seed=1)
    dropped["color"] = [0] * 5 + [1] * 4  # 2 clusters of 5 and 4
    page.evaluate(
        """(text) => {
            const dt = new DataTransfer();
            dt.items.add(new File([text], 'opencoder.visualizer.json', {type: 'application/json'}));
            document.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""",
        json.dumps(dropped),
    )
    page.wait_for_function("() => document.getElementById('banner').textContent.startsWith('Loaded')")
    legend = page.inner_text("#legend")
    assert "Group 0 (5)" in legend and "Group 1 (4)" in legend and "Group 2" not in legend
    assert page.inner_text("#title") == "Conversation map (opencoder.visualizer.json)"
    _click(page, 1, 0)  # first conversation of cluster 1 = index 5, an opencoder rendering
    turns = page.locator("#conversation .turn").evaluate_all(TURNS)
    # index 5 is sample 2 rendered by opencoder, parsed with the prefixes of every model type
    assert turns == [["user", "User:"], ["assistant", "Assistant:"], ["user", "User:"], ["assistant", "Assistant:"]]
    assert "Rome." in page.inner_text("#conversation")

    bad = tmp_path / "bad.visualizer.json"
    bad.write_text(json.dumps({"text": ["a"], "embedding": [[1, 2]], "color": [0]}))
    page.set_input_files("#file", str(bad))
    page.wait_for_function("() => document.getElementById('banner').classList.contains('error')")
    assert "embedding[0] is not three numbers" in page.inner_text("#banner")
    assert "Group 0 (5)" in page.inner_text("#legend")  # the loaded data is kept
    watch.assert_clean()


def _legend(page) -> list[str]:
    return page.locator("#legend .chip").all_inner_texts()


def test_plain_header_named_groups_colour_modes_and_weak_structure_note(served, open_page):
    messages = sample_messages() * 4  # 12 conversations: 1, 1 and 2 user turns
    data = _data(rendered(messages))
    meta = {
        "source": "demo-data",
        "description": "Embeddings: local:all-MiniLM-L6-v2:254. UMAP to 3D; K-Means on the original embeddings.",
        "silhouette": 0.0841,
        "weak_threshold": 0.25,
        "silhouettes": {"2": 0.071, "3": 0.0841},
        "cluster_terms": {"0": ["sort", "python", "list"], "1": ["aardvark", "poet"], "2": []},
    }
    models = ["Model: GPT-4", "Model: GPT-3.5", "Model: GPT-4"] * 4
    attributes = {"words": [len(" ".join(m["content"] for m in c).split()) for c in messages],
                  "turns": [sum(m["role"] == "user" for m in c) for c in messages], "model": models}  # fmt: skip
    build_embeddings_page(data, served.root / "m.html", title="Conversation map: demo-data", meta=meta,
                          attributes=attributes)  # fmt: skip
    watch = open_page(served.url("m.html"), READY)
    page = watch.page
    assert page.inner_text("#title") == "Conversation map: demo-data"
    header = page.inner_text("#meta")
    assert header.startswith("Each dot is one of the 12 conversations of “demo-data”.")
    assert "The 3 colours are groups of similar conversations" in header
    for jargon in ("UMAP", "K-Means", "embedding", "silhouette", "/"):
        assert jargon not in header, jargon
    assert "K-Means" in page.locator("#how-text").text_content()
    assert "Silhouette by k: 2: 0.07, 3: 0.08." in page.locator("#how-text").text_content()
    note = page.inner_text("#structure-note")
    assert note.startswith("The groups are weak") and "silhouette 0.08" in note
    assert _legend(page) == ["0: sort, python, list (4)", "1: aardvark, poet (4)", "Group 2 (4)"]
    _click(page, 1, 0)
    assert "group 1: aardvark, poet · Model: GPT-3.5" in page.inner_text("#conversation .conv-head")

    page.select_option("#colour-by", "model")
    assert _legend(page) == ["Model: GPT-4 (8)", "Model: GPT-3.5 (4)"]
    traces = page.evaluate("document.getElementById('plot').data.map(t => [t.name, t.customdata])")
    assert traces[1] == ["Model: GPT-3.5 (4)", [1, 4, 7, 10]]
    assert traces[-1][1] == [1]  # the selected point stays marked
    page.select_option("#colour-by", "turns")
    assert _legend(page) == ["1 turn (8)", "2 turns (4)"]
    page.select_option("#colour-by", "words")
    words = sorted(set(attributes["words"]))
    assert sum(int(c.rsplit("(", 1)[1].rstrip(")")) for c in _legend(page)) == 12
    assert _legend(page)[0].startswith(f"{words[0]}")
    page.fill("#search", "aardvark")
    page.wait_for_function("() => document.getElementById('search-status').textContent === '4 matches'")
    page.select_option("#colour-by", "cluster")  # search marks survive a colour change
    search_trace = page.evaluate(
        "(() => { const d = document.getElementById('plot').data; return d[d.length - 2].customdata; })()"
    )
    assert search_trace == [1, 4, 7, 10]
    watch.assert_clean()
    save_artifact(page, "embeddings-named-groups.png")


def test_colour_modes_of_a_dropped_file_without_attributes(served, open_page):
    build_embeddings_page(_data(rendered(sample_messages())), served.root / "n.html")
    watch = open_page(served.url("n.html"), READY)
    page = watch.page
    assert page.locator("#structure-note").is_hidden()  # no silhouette known: no claim either way
    assert page.locator("#colour-by option[value='model']").is_disabled()
    page.evaluate("window.ocViz.setColourMode('turns')")
    assert _legend(page) == ["1 turn (2)", "2 turns (1)"]  # counted from the rendered text
    page.evaluate("window.ocViz.setColourMode('model')")  # not available: back to the groups
    assert page.input_value("#colour-by") == "cluster"
    watch.assert_clean()
