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


def test_order_outcomes_flag_position_bias():
    from openchat_hf.visualization.eval_page import order_outcomes

    def review(order, scores=None, model=None, baseline=None, error=None):
        return {"order": order, "scores": scores, "model_score": model, "baseline_score": baseline, "error": error}

    # The judge's own layout (model_score / baseline_score) and the raw [Assistant 1, Assistant 2] one agree.
    flip = [review("model_first", model=9, baseline=7), review("baseline_first", [9, 7])]
    assert order_outcomes(flip) == {
        "order_outcomes": {"model_first": "win", "baseline_first": "loss"},
        "agreement": "flip",
        "orders_disagree": True,
    }
    partial = [review("model_first", [6, 6]), review("baseline_first", [5, 8])]
    assert order_outcomes(partial)["agreement"] == "partial"
    # Samples of one order are averaged before the verdict: (9 + 5) / 2 = 7 vs 7 is a tie.
    samples = [review("model_first", [9, 7]), review("model_first", [5, 7]), review("baseline_first", [7, 7])]
    assert order_outcomes(samples)["order_outcomes"] == {"model_first": "tie", "baseline_first": "tie"}
    failed_one = [review("model_first", [8, 7]), review("baseline_first", None, error="no scores")]
    assert order_outcomes(failed_one) == {
        "order_outcomes": {"model_first": "win"},
        "agreement": "one_order",
        "orders_disagree": False,
    }
    assert order_outcomes(None)["agreement"] is None


def test_new_report_keys_are_read_and_older_reports_keep_working():
    data = eval_page_data(make_report())
    beta, alpha = data["models"]
    assert alpha["length_controlled"] == {"win_rate_pct": pytest.approx(42.0), "ci_pct": pytest.approx([20.0, 65.0]),
                                          "n": 3}  # fmt: skip
    assert beta["coverage"] == {"judged": 4, "total": 5, "complete": False}
    assert alpha["protocol"] == data["protocol"] == {"name": "openchat-v1-pairwise", "prompts_sha256": "3f2a9c0d1e4b5a6978877665544332211aabbccddeeff0011"}  # fmt: skip
    assert alpha["position_bias"] == {"first_position_win_pct": pytest.approx(400 / 6), "decided_reviews": 6,
                                      "disagreements": 1, "flips": 1, "both_orders": 3}  # fmt: skip
    # Percentages stay percentages; a model-level key wins over the report-level one; junk is ignored.
    report = make_report()
    report["models"][0]["length_controlled"] = {"win_rate": 42.0, "ci_low": 20.0, "ci_high": 65.0, "n": 3}
    report["models"][0]["win_rate"] = 50.0
    report["models"][1]["coverage"] = "all of them"
    report["models"][1]["protocol"] = {"name": "other"}
    data = eval_page_data(report)
    assert data["models"][1]["length_controlled"]["win_rate_pct"] == pytest.approx(42.0)
    assert data["models"][0]["coverage"] is None and data["models"][0]["protocol"] == {"name": "other"}
    assert data["protocol"] is None  # two protocols in one run: none shown in the header
    old = eval_page_data(make_report(new_keys=False))
    assert all(
        m["length_controlled"] is None and m["coverage"] is None and m["protocol"] is None for m in old["models"]
    )
    assert old["protocol"] is None and old["runs"][0]["protocols"] == []


def test_several_runs_are_labelled_by_folder_and_checked_for_comparability(tmp_path):
    from openchat_hf.visualization.eval_page import run_labels

    assert run_labels([tmp_path / "a" / "report", tmp_path / "b" / "report", tmp_path / "c" / "report.json"]) == [
        "a/report",
        "b/report",
        "c",
    ]
    assert run_labels([{"models": []}, {"models": []}]) == ["run 1", "run 2"]
    other = make_report()
    other["baseline"] = "gpt-4"
    data = eval_page_data([make_report(), other], ["x", "y"])
    assert [m["label"] for m in data["models"]][:2] == ["beta-7b · x", "beta-7b · y"]
    assert data["baseline"] is None and data["bench"] == "vicuna"
    assert data["comparability"] == [
        "The runs use different baselines (gpt-3.5-turbo, gpt-4): their scores are not comparable."
    ]
    assert [m["label"] for m in data["mt_bench"]["models"]] == ["alpha-13b · x", "alpha-13b · y"]
    with pytest.raises(VisualizationError, match="1 run labels for 2 reports"):
        eval_page_data([make_report(), other], ["x"])


def test_cli_eval_compares_runs(tmp_path, capsys):
    a = write_report(tmp_path / "a", make_report())
    b = write_report(tmp_path / "b", make_report(new_keys=False))
    assert (
        main(["visualize", "eval", str(a), str(b), str(tmp_path / "site"), "--label", "before", "--label", "after"])
        == 0
    )
    payload = re.search(r'id="oc-data">(.*?)</script>', (tmp_path / "site" / "eval.html").read_text(), re.S).group(1)
    assert [r["label"] for r in json.loads(payload)["runs"]] == ["before", "after"]
    capsys.readouterr()
    assert main(["visualize", "eval", str(a), str(b), str(tmp_path / "s2"), "--label", "one"]) == 2
    assert "1 --label for 2 report folders" in capsys.readouterr().err


def test_one_order_protocol_claims_no_position_bias():
    report = make_report()
    for q in report["models"][0]["questions"]:
        q["reviews"] = [r for r in q["reviews"] if r["order"] == "model_first"]  # Vicuna-2023: the model always first
    alpha = next(m for m in eval_page_data(report)["models"] if m["model"] == "alpha-13b")
    assert {q["agreement"] for q in alpha["questions"]} == {"one_order", None}
    assert alpha["position_bias"] == {"first_position_win_pct": None, "decided_reviews": 0, "disagreements": 0,
                                      "flips": 0, "both_orders": 0}  # fmt: skip
