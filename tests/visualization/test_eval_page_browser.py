"""The evaluation-results page in headless Chromium, from hand-made report.json files following the contract."""

from __future__ import annotations

import pytest
from viz_helpers import HOSTILE_ASSISTANT, make_report, save_artifact, write_report

from openchat_hf.visualization.eval_page import build_eval_page

pytestmark = pytest.mark.browser
READY = "() => window.ocEval !== undefined"


def _rows(page, selector: str) -> list[list[str]]:
    return page.locator(f"{selector} tr").evaluate_all(
        "rows => rows.map(r => [...r.children].map(c => c.textContent.trim()))"
    )


def test_eval_page_shows_the_report_numbers(served, open_page, tmp_path):
    page_path = build_eval_page(write_report(tmp_path / "report", make_report()), served.root)
    assert page_path == served.root / "eval.html"
    watch = open_page(served.url("eval.html"), READY)
    page = watch.page
    assert page.evaluate("window.ocEval.failures") == []
    assert page.inner_text("#meta") == (
        "bench: vicuna · baseline: gpt-3.5-turbo · judge: gpt-4 · prompts: v1 · samples per order: 1 · "
        "protocol: openchat-v1-pairwise (prompts 3f2a9c0d1e4b) · 2 model(s)"
    )
    assert page.inner_text("#note") == "Hand-made report for tests."
    assert page.inner_text("#warnings") == (
        "beta-7b: only 4 of 5 questions were judged; its figures cover the judged questions only."
    )
    assert page.locator("#runs-section").is_hidden()  # one run: no comparison table

    summary = _rows(page, "#summary")
    assert summary[0][6:10] == ["Win rate", "Win-rate CI", "Length-controlled win rate", "LC CI"]
    assert summary[1:] == [
        ["beta-7b", "120.0%", "[110.0%, 130.0%]", "3", "0", "0", "100.0%", "[70.0%, 100.0%]", "80.0%",
         "[61.0%, 95.0%]", "100.0%", "1", "4", "4 of 5 (incomplete)"],
        ["alpha-13b", "91.3%", "[80.0%, 102.0%]", "1", "1", "1", "50.0%", "[10.0%, 90.0%]", "42.0%",
         "[20.0%, 65.0%]", "50.0%", "1", "4", "4 of 4"],
    ]  # fmt: skip
    chart = page.evaluate(
        "(() => { const d = document.getElementById('relative-chart').data[0]; return [d.x, d.y]; })()"
    )
    assert chart[0] == ["beta-7b", "alpha-13b"]  # sorted, best first
    assert chart[1] == pytest.approx([120.0, 100 * 21 / 23])
    error_bars = page.evaluate("document.getElementById('relative-chart').data[0].error_y")
    assert error_bars["array"] == pytest.approx([10.0, 102.0 - 100 * 21 / 23])
    assert error_bars["arrayminus"] == pytest.approx([10.0, 100 * 21 / 23 - 80.0])
    # Raw and length-controlled win rates side by side, each with its interval.
    rates = page.evaluate(
        "document.getElementById('winrate-chart').data.map(t => [t.name, t.y, t.error_y.array, t.error_y.arrayminus])"
    )
    assert rates[0][0] == "win rate (ties count half)" and rates[0][1] == pytest.approx([100.0, 50.0])
    assert rates[1][0] == "length-controlled win rate" and rates[1][1] == pytest.approx([80.0, 42.0])
    assert rates[1][2] == pytest.approx([15.0, 23.0]) and rates[1][3] == pytest.approx([19.0, 22.0])
    assert "length explains part of the result" in page.inner_text("#winrate-note")
    wtl = page.evaluate("document.getElementById('wtl-chart').data.map(t => [t.name, t.x])")
    assert wtl[0] == ["win", pytest.approx([100.0, 100 / 3])]
    assert wtl[2] == ["loss", pytest.approx([0.0, 100 / 3])]
    assert wtl[3][1] == pytest.approx([100.0, 50.0])  # win-rate markers

    # Position bias: question 2 is a win read one way and a loss read the other; 4 of 6 decided reviews preferred
    # the answer read first.
    assert _rows(page, "#bias")[2] == ["alpha-13b", "3", "1", "1", "66.7% of 6 decided reviews"]

    categories = _rows(page, "#categories")
    assert categories[0] == ["Category", "beta-7b", "alpha-13b"]
    assert categories[1] == ["math", "—", "100.0% (0/1/0 of 2)"]
    assert categories[2] == ["writing", "125.0% (2/0/0 of 2)", "86.7% (1/0/1 of 2)"]
    assert _rows(page, "#mt-bench")[1] == ["alpha-13b", "6.25", "7.00", "5.50", "3.00"]
    turns = page.evaluate("document.getElementById('mt-turn-chart').data.map(t => [t.name, t.y])")
    assert turns == [["turn 1", [7.0]], ["turn 2", [5.5]]]
    mt_rows = _rows(page, "#mt-questions")
    assert [r[:4] for r in mt_rows] == [["#", "Category", "Turn 1", "Turn 2"], ["81", "writing", "9", "failed"],
                                       ["82", "math", "3", "2"]]  # fmt: skip
    page.select_option("#mt-sort-select", "low")
    assert [r[0] for r in _rows(page, "#mt-questions")[1:]] == ["82", "81"]
    page.fill("#mt-search", "vivid")
    assert page.inner_text("#mt-question-count") == "1 of 2 questions"
    page.locator("#mt-questions tr[data-question='81'] summary").click()
    assert "judge error: no [[rating]] in the judge's answer" in page.inner_text("#mt-questions")

    page.select_option("#model-select", label="alpha-13b")
    questions = page.locator("#questions tr[data-question]")
    assert questions.count() == 4
    assert page.inner_text("#question-count") == "4 of 4 questions"
    flip = page.locator("#questions tr[data-question='2']")
    assert "disagree" in flip.get_attribute("class")
    assert flip.locator(".orders").inner_text().splitlines() == [
        "orders disagree (flip)",
        "alpha-13b first: win · gpt-3.5-turbo first: loss",
    ]
    assert page.locator("#questions tr[data-question='1'] .orders .badge").inner_text() == "orders agree"
    first = page.locator("#questions tr[data-question='1']")
    assert first.locator(".scores").inner_text() == "9.00 / 7.00"
    assert page.locator("#questions tr.detail").count() == 0
    first.click()  # the side-by-side view
    detail = page.locator("#questions tr[data-detail='1']")
    assert detail.locator(".answers h4").all_inner_texts() == [
        "alpha-13b's answer",
        "gpt-3.5-turbo's answer (baseline)",
    ]
    assert detail.locator(".words").all_inner_texts() == ["7 words", "7 words"]  # what length control is about
    assert detail.locator(".model-answer li").count() == 2  # Markdown list rendered
    assert detail.locator(".baseline-answer pre code").inner_text() == "print('sea')"
    box = detail.locator(".answers").bounding_box()
    left, right = detail.locator(".model-answer").bounding_box(), detail.locator(".baseline-answer").bounding_box()
    assert (
        left["x"] < right["x"]
        and abs(left["y"] - right["y"]) < 2
        and right["x"] + right["width"] <= box["x"] + box["width"] + 1
    )
    assert detail.locator(".review-column h4").all_inner_texts() == [
        "Review with alpha-13b's answer first · win for alpha-13b",
        "Review with gpt-3.5-turbo's answer first · win for alpha-13b",
    ]
    # Scores are mapped back to the model in both orders.
    assert detail.locator(".review .meta").all_inner_texts() == [
        "sample 0 · alpha-13b 9.0 · gpt-3.5-turbo 7.0",
        "sample 0 · alpha-13b 9.0 · gpt-3.5-turbo 7.0",
    ]
    failed = page.locator("#questions tr[data-question='3']")
    assert "failed" in failed.get_attribute("class")
    assert failed.locator(".badge").inner_text() == "judge failed"
    assert failed.locator(".scores").inner_text() == "— / —"
    failed.click()
    assert page.locator("#questions tr[data-detail='3'] .error").all_text_contents() == [
        "judge error: no scores found in the judge's answer",
        "judge error: HTTP 500 from the judge",
    ]
    ids = "#questions tr[data-question]"
    qids = lambda: page.locator(ids).evaluate_all("rs => rs.map(r => r.dataset.question)")  # noqa: E731
    page.select_option("#outcome-select", "loss")
    assert qids() == ["4"]
    page.select_option("#outcome-select", "")
    page.select_option("#category-select", "math")
    assert qids() == ["2", "3"]
    page.select_option("#category-select", "")
    page.check("#disagree-only")
    assert qids() == ["2"]
    page.uncheck("#disagree-only")
    page.select_option("#sort-select", "gap-asc")  # worst first: 4 (-4), 2 (0), 1 (+2), failed last
    assert qids() == ["4", "2", "1", "3"]
    page.select_option("#sort-select", "disagree")
    assert qids()[0] == "2"
    only = "(id) => [...document.querySelectorAll('#questions tr[data-question]')].map(r => r.dataset.question).join() === id"
    page.fill("#question-search", "SUNSET")
    page.wait_for_function(only, arg="4")
    assert page.inner_text("#question-count") == "1 of 4 questions"
    page.fill("#question-search", "vivid")  # review text is searched too
    page.wait_for_function(only, arg="1")
    page.fill("#question-search", "")
    page.select_option("#sort-select", "id")
    watch.assert_clean()
    page.evaluate("window.scrollTo(0, 0)")
    save_artifact(page, "eval.png")


def test_older_report_without_the_new_keys_still_renders(served, open_page, tmp_path):
    build_eval_page(write_report(tmp_path / "old", make_report(new_keys=False)), served.root / "old.html")
    watch = open_page(served.url("old.html"), READY)
    page = watch.page
    assert page.evaluate("window.ocEval.failures") == []
    assert "protocol" not in page.inner_text("#meta")
    assert page.locator("#warnings").is_hidden()
    summary = _rows(page, "#summary")
    assert [r[8:10] + r[13:] for r in summary[1:]] == [["—", "—", "—"], ["—", "—", "—"]]
    assert page.evaluate("document.getElementById('winrate-chart').data.length") == 1
    assert "no length-controlled win rate" in page.inner_text("#winrate-note")
    assert page.locator("#mt-questions-block").is_hidden()
    assert _rows(page, "#mt-bench")[1] == ["alpha-13b", "6.25", "7.00", "5.50", "3.00"]
    watch.assert_clean()


def test_several_runs_on_one_page(served, open_page, tmp_path):
    first = write_report(tmp_path / "runs" / "2026-11-30", make_report())
    later = make_report()
    later["models"] = [later["models"][1]]  # beta-7b only, re-judged with other prompts
    later["models"][0]["relative_score"] = 1.3
    later["protocol"] = {"name": "openchat-v1-pairwise", "prompts_sha256": "99" * 32}
    later["note"] = "Second run."
    second = write_report(tmp_path / "runs" / "2026-12-01", later)
    build_eval_page([first, second], served.root / "runs.html")
    watch = open_page(served.url("runs.html"), READY)
    page = watch.page
    assert page.evaluate("window.ocEval.failures") == []
    assert page.title() == "vicuna results: 2 runs compared"
    assert page.inner_text("#meta") == "2 runs · bench: vicuna · baseline: gpt-3.5-turbo · 3 model(s)"
    assert page.inner_text("#note").splitlines() == [
        "2026-11-30: Hand-made report for tests.",
        "2026-12-01: Second run.",
    ]
    assert "different judging protocols or prompt files" in page.inner_text("#warnings")
    runs = _rows(page, "#runs")
    assert runs[0][:2] == ["Run", "Model"]
    assert [r[:2] + r[6:] for r in runs[1:]] == [
        ["2026-11-30", "beta-7b", "4 of 5 (incomplete)", "120.0%", "100.0%", "80.0%"],
        ["2026-11-30", "alpha-13b", "4 of 4", "91.3%", "50.0%", "42.0%"],
        ["2026-12-01", "beta-7b", "4 of 5 (incomplete)", "130.0%", "100.0%", "80.0%"],
    ]
    assert runs[3][5] == "openchat-v1-pairwise (prompts 999999999999)"
    names = page.evaluate("document.getElementById('relative-chart').data[0].x")
    assert names == ["beta-7b · 2026-12-01", "beta-7b · 2026-11-30", "alpha-13b · 2026-11-30"]
    options = page.locator("#model-select option").all_inner_texts()
    assert options == names
    page.select_option("#model-select", label="alpha-13b · 2026-11-30")
    assert page.inner_text("#question-count") == "4 of 4 questions"
    watch.assert_clean()
    save_artifact(page, "eval-runs.png")


def test_eval_chart_exports_svg_offline(served, open_page, tmp_path):
    build_eval_page(write_report(tmp_path / "report", make_report()), served.root / "e.html")
    watch = open_page(served.url("e.html"), READY)
    page = watch.page
    page.hover("#relative-chart")
    with page.expect_download() as download:
        page.locator("#relative-chart [data-title='Download plot as SVG']").click()
    path = download.value.path()
    svg = open(path, encoding="utf-8").read()
    assert svg.startswith("<svg") and "beta-7b" in svg
    with page.expect_download() as download:
        page.locator("#relative-chart [data-title='Download plot as a PNG']").click()
    assert open(download.value.path(), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    watch.assert_clean()


@pytest.mark.parametrize("csp", [True, False], ids=["with-csp", "without-csp"])
def test_hostile_answers_and_judge_text_render_as_text(served, open_page, tmp_path, csp):
    report = make_report(hostile_answer=HOSTILE_ASSISTANT)
    report["models"][0]["model"] = "<img src=x onerror=\"window.__pwned='model'\">"
    report["note"] = "<script>window.__pwned='note'</script>"
    build_eval_page(report, served.root / "h.html", csp=csp)
    watch = open_page(served.url("h.html"), READY)
    page = watch.page
    assert page.evaluate("document.querySelectorAll('script').length") == 3
    assert page.inner_text("#note") == report["note"]
    page.select_option("#model-select", index=1)  # the hostile-named model (alpha, sorted second)
    page.locator("#questions tr[data-question='1']").click()
    row = page.locator("#questions tr[data-detail='1']")
    answer = row.locator(".model-answer")
    assert "</script><script>window.__pwned = 'fence'</script>" in answer.locator("pre code").inner_text()
    assert "<b onmouseover=" in answer.inner_text()
    assert "<script>window.__pwned='judge'</script>" in row.locator(".review").nth(1).inner_text()
    page.locator("#mt-questions tr[data-question='82'] summary").click()
    assert "<script>window.__pwned='mt'</script>" in page.inner_text("#mt-questions")
    assert page.locator("main img, main script, main iframe").count() == 0
    assert page.locator("main a").evaluate_all("els => els.map(e => e.getAttribute('href'))") == [
        "https://example.com/docs"
    ]
    assert "<img src=x" in page.locator("#summary").inner_text()
    assert page.evaluate("window.__pwned") is None
    watch.assert_clean()
    if csp:
        save_artifact(page, "eval-hostile.png")


def test_mt_bench_only_report(served, open_page):
    report = {"version": 1, "bench": "mt_bench", "baseline": None, "judge": None, "note": None, "models": []}
    report["mt_bench"] = {
        "models": [
            {"model": "m1", "average": 7.125, "turns": {"1": 7.5, "2": 6.75}, "categories": {"coding": 5.0}},
            {"model": "m2", "average": None, "turns": {}, "categories": {}},
        ]
    }
    build_eval_page(report, served.root / "mt.html")
    watch = open_page(served.url("mt.html"), READY)
    page = watch.page
    assert page.evaluate("window.ocEval.failures") == []
    assert _rows(page, "#mt-bench") == [
        ["Model", "Average", "Turn 1", "Turn 2", "coding"],
        ["m1", "7.13", "7.50", "6.75", "5.00"],
        ["m2", "—", "—", "—", "—"],
    ]
    assert page.locator("#summary-section").is_hidden() and page.locator("#questions").is_hidden()
    watch.assert_clean()


def test_report_as_the_evaluation_code_writes_it_now(served, open_page, tmp_path):
    """Question-level protocol / verdict_source, MT-bench coverage, a one-order protocol."""
    report = make_report()
    report["models"] = report["models"][1:]
    for q in report["models"][0]["questions"]:
        q.update(protocol="vicuna-2023", prompts_sha256="ab" * 32, verdict_source="json")
        q["reviews"] = [r for r in q["reviews"] if r["order"] == "model_first"]
    report["mt_bench"]["models"][0]["coverage"] = {"judged": 2, "total": 3, "complete": False}
    build_eval_page(report, served.root / "now.html")
    watch = open_page(served.url("now.html"), READY)
    page = watch.page
    assert page.evaluate("window.ocEval.failures") == []
    assert "cannot show position bias" in page.inner_text("#bias-section")
    assert "alpha-13b (MT-bench grades): only 2 of 3 questions were judged" in page.inner_text("#warnings")
    assert _rows(page, "#mt-bench")[1][-1] == "2 of 3 (incomplete)"
    page.locator("#questions tr[data-question='1']").click()
    detail = page.locator("#questions tr[data-detail='1']")
    assert (
        detail.locator(".verdict-source").inner_text() == "protocol vicuna-2023 · verdict read from the judge's JSON"
    )
    assert detail.locator("[data-order='baseline_first'] .meta").inner_text() == "no review in this order"
    watch.assert_clean()
