"""HTML -> Markdown: every element kind ShareGPT answers hold, and ChatGPT's artefacts removed."""

import pytest

from openchat_hf.data.html_to_markdown import clean_artifacts, html_to_markdown, looks_like_html, to_markdown
from openchat_hf.data.sample import code_block_html, markdown_to_chatgpt_html

WRAP = '<div class="markdown prose w-full break-words dark:prose-invert light">{}</div>'


@pytest.mark.parametrize(
    "html, expected",
    [
        ("<p>Some <strong>bold</strong> and <em>italic</em> text.</p>", "Some **bold** and *italic* text."),
        ("<p>Call <code>items.reverse()</code> now.</p>", "Call `items.reverse()` now."),
        ('<p>See <a href="https://example.com/a_b">the docs</a>.</p>', "See [the docs](https://example.com/a_b)."),
        ("<h2>Setup</h2><p>text</p>", "## Setup\n\ntext"),
        ("<h3>Notes</h3>", "### Notes"),
        ("<p>snake_case and 2 * 3</p>", "snake_case and 2 * 3"),
        ("<p>a &lt;b&gt; &amp; c</p>", "a <b> & c"),
        ("<ol><li>one</li><li>two</li></ol>", "1. one\n2. two"),
        ("<ul><li>a<ul><li>a.1</li><li>a.2</li></ul></li><li>b</li></ul>", "- a\n  - a.1\n  - a.2\n- b"),
        (
            "<table><thead><tr><th>A</th><th>B</th></tr></thead><tbody><tr><td>1</td><td>x</td></tr></tbody></table>",
            "| A | B |\n| --- | --- |\n| 1 | x |",
        ),
    ],
)
def test_elements(html, expected):
    assert html_to_markdown(WRAP.format(html)) == expected


def test_chatgpt_code_block_keeps_language_and_code_drops_copy_button():
    code = "def f(x_y):\n    return x_y * 2 < 3 and \"a\" != 'b'\n"
    md = html_to_markdown(WRAP.format("<p>Here:</p>" + code_block_html(code, "python") + "<p>Done.</p>"))
    assert md == f"Here:\n\n```python\n{code}```\n\nDone."
    assert "Copy code" not in md


def test_code_block_language_from_header_when_code_has_no_class():
    html = code_block_html("ls -la\n", "").replace('<span class="">code</span>', '<span class="">bash</span>')
    assert html_to_markdown(html) == "```bash\nls -la\n```"


def test_code_block_without_language():
    html = "<pre><code>x = 1\n</code></pre>"
    assert html_to_markdown(html) == "```\nx = 1\n```"


def test_regeneration_counter_removed_only_at_start():
    md = html_to_markdown("<div>2 / 3</div>" + WRAP.format("<p>Answer: 1 / 2 of the pie.</p><p>3 / 4</p>"))
    assert md == "Answer: 1 / 2 of the pie.\n\n3 / 4"


def test_copy_chars_words_label_removed():
    md = html_to_markdown(WRAP.format("<p>Poem line.</p><p>Copy123 chars / 20 words</p>"))
    assert md == "Poem line."


def test_markdown_values_pass_through_with_artifacts_cleaned():
    md = "1 / 2\n\nUse `x`:\n\n```pythonCopy code\nprint(1)\n```\n\n\n\nEnd <3"
    assert not looks_like_html("Use `x` when a < b and b > c")
    assert to_markdown(md) == "Use `x`:\n\n```python\nprint(1)\n```\n\nEnd <3"


def test_empty_copy_code_fence_removed():
    assert clean_artifacts("Text\n\n```\nCopy code\n```") == "Text"


def test_sample_renderer_round_trips_through_the_converter():
    text = "Intro with `code` and **bold**.\n\n1. First: one\n2. Second: two\n\n```js\nlet a = 1;\n```\n\n| a | b |\n| --- | --- |\n| 1 | 2 |"
    assert to_markdown(markdown_to_chatgpt_html(text)) == text
