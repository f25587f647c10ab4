"""Per-message HTML detection on real GPT-4 / model answers, and HTML entities decoded in escaped text."""

import html
import json

import pytest

from openchat_hf.data.html_to_markdown import clean_artifacts, looks_escaped, looks_like_html, to_markdown
from openchat_hf.data.sample import code_block_html, markdown_to_chatgpt_html
from openchat_hf.resources import MT_BENCH_DIR, VICUNA_ANSWERS_DIR, VICUNA_BENCH_DIR

WRAP = '<div class="markdown prose w-full break-words dark:prose-invert light">{}</div>'


def _real_answers() -> list[str]:
    """Every recorded answer bundled with the project: GPT-4 references (MT-bench, Vicuna-bench) and model answers."""
    texts = []
    for path in (MT_BENCH_DIR / "reference_answer_gpt-4.jsonl", VICUNA_BENCH_DIR / "reference_answer_gpt-4.jsonl"):
        for line in path.read_text().splitlines():
            texts += [t for c in json.loads(line)["choices"] for t in c["turns"]]
    for path in sorted(VICUNA_ANSWERS_DIR.glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text().splitlines()]
    return texts


REAL = _real_answers()
HTML_ANSWERS = [t for t in REAL if "<html" in t]


def test_the_real_answers_about_html_pages_are_there():
    assert len(REAL) > 400 and len(HTML_ANSWERS) == 2
    assert any(t.startswith("<!DOCTYPE html>") for t in HTML_ANSWERS)  # the answer *is* a page, no code fence


def test_real_markdown_answers_are_never_run_through_the_html_converter():
    for text in REAL:
        assert not looks_like_html(text), text[:80]
        assert to_markdown(text) == clean_artifacts(text)
    page = next(t for t in HTML_ANSWERS if t.startswith("<!DOCTYPE"))
    assert to_markdown(page) == page.strip()  # 1,335 characters, not one heading


def test_real_answers_rendered_as_chatgpt_pages_are_detected_and_converted():
    for text in REAL:
        rendered = markdown_to_chatgpt_html(text)
        assert looks_like_html(rendered), text[:80]
    for text in HTML_ANSWERS:  # the HTML inside survives the round trip as text
        back = to_markdown(markdown_to_chatgpt_html(text))
        assert "<!DOCTYPE html>" in back and "</html>" in back


@pytest.mark.parametrize(
    "value",
    [
        'Use this:\n\n```html\n<div class="box"><p>Hi</p></div>\n```',
        "<div>\n  <p>Hello</p>\n</div>",  # hand-written HTML source (an answer that is code)
        "<p> is the paragraph tag; </p> closes it. Wrap text in it.",
        "Line one<br>line two",
        "<p>Styles:</p>\n<style>p { color: red; }</style>\n<p>done</p>",
        "<table> and <tr> make tables",
        "~~~\n<p>x</p>\n~~~",
        "Plain text with <b>bold</b> in it",
    ],
)
def test_markdown_with_tags_is_not_html(value):
    assert not looks_like_html(value)
    assert to_markdown(value) == clean_artifacts(value)


@pytest.mark.parametrize(
    "value",
    [
        WRAP.format("<p>Hello <strong>there</strong></p>"),
        "<p>An old-style answer.</p><p>Two paragraphs.</p>",
        "<div>1 / 2</div>" + WRAP.format("<ol><li>one</li></ol>"),
        "<div><p>Before 2023 pages had no class.</p></div>",
        WRAP.format("<p>Code:</p>" + code_block_html("<div>\n  <p>x</p>\n</div>\n```\n", "html")),
        "<p>a</p>\n<p>b</p>\n",
    ],
)
def test_rendered_html_is_html(value):
    assert looks_like_html(value)


def test_entities_of_escaped_page_text_are_decoded():
    human = html.escape('It\'s "quoted" & <b>bold</b>?')  # how ShareGPT pages store a human turn
    assert "&#x27;" in human and "&quot;" in human
    assert to_markdown(human, escaped=True) == 'It\'s "quoted" & <b>bold</b>?'
    assert to_markdown(human) == 'It\'s "quoted" & <b>bold</b>?'  # per value: it is escaped text
    assert to_markdown("Write &amp; or &lt; in HTML", escaped=False) == "Write &amp; or &lt; in HTML"


@pytest.mark.parametrize(
    "text, escaped",
    [
        ("It&#x27;s &quot;fine&quot;", True),
        ("a &lt; b &amp;&amp; c", True),
        ("Tom & Jerry &amp; co", False),  # a bare & : not escaped text
        ("What does &quot; mean in <p>?", False),  # a raw <
        ("no entities at all", False),
    ],
)
def test_looks_escaped(text, escaped):
    assert looks_escaped(text) is escaped
