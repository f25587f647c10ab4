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
        "bench: vicuna · baseline: gpt-3.5-turbo · judge: gpt-4 · prompts: v1 · samples per order: 1 · 2 model(s)"
    )
    assert page.inner_text("#note") == "Hand-made report for tests."

    summary = _rows(page, "#summary")
    assert summary[1:] == [
        ["beta-7b", "120.0%", "[110.0%, 130.0%]", "3", "0", "0", "100.0%", "[70.0%, 100.0%]", "100.0%", "1", "4"],
        ["alpha-13b", "91.3%", "[80.0%, 102.0%]", "1", "1", "1", "50.0%", "[10.0%, 90.0%]", "50.0%", "1", "4"],
    ]
    chart = page.evaluate(
        "(() => { const d = document.getElementById('relative-chart').data[0]; return [d.x, d.y]; })()"
    )
    assert chart[0] == ["beta-7b", "alpha-13b"]  # sorted, best first
    assert chart[1] == pytest.approx([120.0, 100 * 21 / 23])
    error_bars = page.evaluate("document.getElementById('relative-chart').data[0].error_y")
    assert error_bars["array"] == pytest.approx([10.0, 102.0 - 100 * 21 / 23])
    assert error_bars["arrayminus"] == pytest.approx([10.0, 100 * 21 / 23 - 80.0])
    wtl = page.evaluate("document.getElementById('wtl-chart').data.map(t => [t.name, t.x])")
    assert wtl[0] == ["win", pytest.approx([100.0, 100 / 3])]
    assert wtl[2] == ["loss", pytest.approx([0.0, 100 / 3])]
    assert wtl[3][1] == pytest.approx([100.0, 50.0])  # win-rate markers

    categories = _rows(page, "#categories")
    assert categories[0] == ["Category", "beta-7b", "alpha-13b"]
    assert categories[1] == ["math", "—", "100.0% (0/1/0 of 2)"]
    assert categories[2] == ["writing", "125.0% (2/0/0 of 2)", "86.7% (1/0/1 of 2)"]
    assert _rows(page, "#mt-bench")[1] == ["alpha-13b", "6.25", "7.00", "5.50", "3.00"]

    page.select_option("#model-select", label="alpha-13b")
    questions = page.locator("#questions tbody tr, #questions tr[data-question]")
    assert questions.count() == 4
    assert page.inner_text("#question-count") == "4 of 4 questions"
    first = page.locator("#questions tr[data-question='1']")
    assert first.locator(".scores").inner_text() == "9.00 / 7.00"
    assert first.locator(".model-answer li").count() == 2  # Markdown list rendered
    assert first.locator(".baseline-answer pre code").inner_text() == "print('sea')"
    first.locator("summary").click()
    reviews = first.locator(".review .meta").all_inner_texts()
    # Scores are mapped back to the model in both orders.
    assert reviews == [
        "alpha-13b first · sample 0 · alpha-13b 9.0 · gpt-3.5-turbo 7.0",
        "gpt-3.5-turbo first · sample 0 · alpha-13b 9.0 · gpt-3.5-turbo 7.0",
    ]
    failed = page.locator("#questions tr[data-question='3']")
    assert failed.get_attribute("class") == "failed"
    assert failed.locator(".badge").inner_text() == "judge failed"
    assert failed.locator(".scores").inner_text() == "— / —"
    assert failed.locator(".error").all_text_contents() == [
        "judge error: no scores found in the judge's answer",
        "judge error: HTTP 500 from the judge",
    ]
    page.select_option("#outcome-select", "loss")
    assert page.locator("#questions tr[data-question]").evaluate_all("rs => rs.map(r => r.dataset.question)") == ["4"]
    page.select_option("#outcome-select", "")
    page.select_option("#category-select", "math")
    assert page.locator("#questions tr[data-question]").evaluate_all("rs => rs.map(r => r.dataset.question)") == [
        "2",
        "3",
    ]
    page.select_option("#category-select", "")
    watch.assert_clean()
    page.evaluate("window.scrollTo(0, 0)")
    save_artifact(page, "eval.png", docs_name="eval.png")


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
    row = page.locator("#questions tr[data-question='1']")
    row.locator("summary").click()
    answer = row.locator(".model-answer")
    assert "</script><script>window.__pwned = 'fence'</script>" in answer.locator("pre code").inner_text()
    assert "<b onmouseover=" in answer.inner_text()
    assert "<script>window.__pwned='judge'</script>" in row.locator(".review").nth(1).inner_text()
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
