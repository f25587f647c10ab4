"""Page assembly (inert JSON, CSP, inlined plotly.js), the eval report reader and the CLI, without a browser."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
from viz_helpers import HOSTILE_ASSISTANT, make_report, rendered, sample_messages, write_report

from openchat_hf.cli import main
from openchat_hf.visualization import VisualizationError, build_embeddings_page, build_eval_page, load_report
from openchat_hf.visualization.embeddings_page import visualizer_data
from openchat_hf.visualization.eval_page import eval_page_data, normalize_model
from openchat_hf.visualization.html import render_page, safe_json


def test_safe_json_is_inert_and_round_trips():
    data = {"t": ["</script><script>alert(1)</script>", "a & b", "\u2028\u2029", "<!--", "{{DATA}}"]}
    text = safe_json(data)
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == data


def test_render_page_fills_once_and_hashes_scripts():
    template = "<title>{{TITLE}}</title>{{CSP}}<style>{{STYLE}}</style><x>{{DATA}}</x>{{SCRIPTS}}"
    html = render_page(template, title="<b>&", data={"s": "{{SCRIPTS}} {{TITLE}}"}, scripts=["var a = 1;", "b()"])
    assert "<title>&#60;b&#62;&#38;</title>" in html
    assert '<x>{"s":"{{SCRIPTS}} {{TITLE}}"}</x>' in html  # placeholders inside data are never filled
    hashes = re.search(r"script-src ([^;]+);", html).group(1).split()
    expected = [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in ("var a = 1;", "b()")
    ]
    assert hashes == expected
    assert "connect-src 'none'" in html and "unsafe-inline'; img" in html  # styles only, never scripts
    assert "<script>var a = 1;</script>\n<script>b()</script>" in html
    with pytest.raises(VisualizationError, match="</script"):
        render_page(template, title="t", data={}, scripts=["x = '</script>'"])


def test_embeddings_page_is_self_contained(tmp_path):
    texts = rendered(sample_messages() + [[{"role": "user", "content": HOSTILE_ASSISTANT}]])
    data = visualizer_data(texts, [[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3]], [0, 1, 1, 0])
    page = build_embeddings_page(data, tmp_path / "p" / "page.html", model_type="opencoder")
    html = page.read_text(encoding="utf-8")
    markup = re.sub(r"<script[^>]*>.*?</script>", "", html, flags=re.S)
    assert re.findall(r"""(?:src|href)=["']?([^"' >]+)""", markup) == ["data:,"]  # nothing loaded from anywhere
    assert "<script src" not in html and "cdn.plot.ly" not in markup
    assert html.count("<script") == 3
    payload = re.search(r'<script type="application/json" id="oc-data">(.*?)</script>', html, re.S).group(1)
    parsed = json.loads(payload)
    assert parsed["text"] == texts and parsed["color"] == [0, 1, 1, 0] and parsed["model_type"] == "opencoder"
    assert set(parsed["model_types"]) >= {"openchat", "opencoder", "openchat_8192"}
    assert parsed["model_types"]["opencoder"]["user"] == "User:"
    assert "Plotly" in html and len(html) > 3_000_000  # plotly.js inlined


def test_visualizer_data_is_the_original_format():
    data = visualizer_data(["a", "b"], [[0.123456789, 1, 2], [3, 4, 5]], [1, 0])
    assert data == {"text": ["a", "b"], "embedding": [[0.12346, 1.0, 2.0], [3.0, 4.0, 5.0]], "color": [1, 0]}
    with pytest.raises(VisualizationError, match="same length"):
        visualizer_data(["a"], [[0, 0, 0]], [0, 1])


def test_report_units_are_normalised_to_percent():
    ratio = make_report()["models"][0]
    percent = {
        **ratio,
        "relative_score": 100 * 21 / 23,
        "relative_score_ci": [80.0, 102.0],
        "win_rate": 50.0,
        "win_rate_ci": [10.0, 90.0],
        "win_rate_no_ties": 50.0,
        "categories": {"writing": {"relative_score": 100 * 13 / 15, "wins": 1, "ties": 0, "losses": 1, "n": 2}},
    }
    for entry in (ratio, percent):
        m = normalize_model(entry)
        assert m["relative_score_pct"] == pytest.approx(100 * 21 / 23)
        assert m["relative_score_ci_pct"] == pytest.approx([80.0, 102.0])
        assert m["win_rate_pct"] == pytest.approx(50.0)
        assert m["win_rate_ci_pct"] == pytest.approx([10.0, 90.0])
        assert m["categories"]["writing"]["relative_score_pct"] == pytest.approx(100 * 13 / 15)
    broken = normalize_model({"model": "x", "relative_score": None, "categories": None, "questions": None})
    assert broken["relative_score_pct"] is None and broken["categories"] == {} and broken["questions"] == []


def test_eval_page_data_sorts_and_tolerates_missing_scores():
    report = make_report()
    report["models"].append({"model": "broken", "relative_score": None})
    data = eval_page_data(report)
    assert [m["model"] for m in data["models"]] == ["beta-7b", "alpha-13b", "broken"]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "report.json not found"),
        ("{oops", "not valid JSON"),
        ('{"version": 1}', "expected an object with a 'models' list"),
        ('{"version": 2, "models": []}', "report version 2"),
        ('{"version": 1, "models": [{"relative_score": 1}]}', r"models\[0\] must be an object with a 'model' name"),
    ],
)
def test_bad_reports_are_refused_clearly(tmp_path, content, match):
    if content is not None:
        (tmp_path / "report.json").write_text(content)
    with pytest.raises(VisualizationError, match=match):
        load_report(tmp_path)


def test_cli_eval(tmp_path, capsys):
    report_dir = write_report(tmp_path / "report", make_report())
    assert main(["visualize", "eval", str(report_dir), str(tmp_path / "site")]) == 0
    page = tmp_path / "site" / "eval.html"
    assert f"wrote {page}" in capsys.readouterr().out
    payload = re.search(r'id="oc-data">(.*?)</script>', page.read_text(encoding="utf-8"), re.S).group(1)
    assert [m["model"] for m in json.loads(payload)["models"]] == ["beta-7b", "alpha-13b"]
    assert build_eval_page(report_dir / "report.json", tmp_path / "x.html") == tmp_path / "x.html"

    assert main(["visualize", "eval", str(tmp_path / "nowhere"), str(tmp_path / "site2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("openchat-hf visualize: error:") and "report.json not found" in err
    assert not (tmp_path / "site2").exists()


def test_cli_embeddings_bad_inputs(tmp_path, capsys):
    (tmp_path / "plain.text.json").write_text(json.dumps(["no turns here"]))
    assert main(["visualize", "embeddings", str(tmp_path / "plain.text.json"), str(tmp_path / "o")]) == 2
    assert "pass the --model-type" in capsys.readouterr().err
    assert main(["visualize", "embeddings", "x", str(tmp_path / "o"), "--model-type", "nope"]) == 2
    assert "Unknown model type 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["visualize", "embeddings", "x", str(tmp_path / "o"), "--clusters", "many"])
    assert "expected a number of clusters or 'auto'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_max_points_samples_a_seeded_ordered_subset():
    from openchat_hf.visualization.conversations import Conversation
    from openchat_hf.visualization.embeddings_page import EmbeddingsPageConfig, _sample

    conversations = [Conversation(id=str(i), text=f"t{i}") for i in range(50)]
    picked = _sample(conversations, 10, seed=1)
    assert len(picked) == 10 and len({c.id for c in picked}) == 10
    assert [int(c.id) for c in picked] == sorted(int(c.id) for c in picked)  # original order kept
    assert [c.id for c in _sample(conversations, 10, seed=1)] == [c.id for c in picked]
    assert [c.id for c in _sample(conversations, 10, seed=2)] != [c.id for c in picked]
    assert _sample(conversations, None, seed=1) == conversations == _sample(conversations, 50, seed=1)
    with pytest.raises(VisualizationError, match="max_points must be at least 1"):
        EmbeddingsPageConfig(max_points=0)
