"""The pages' Markdown renderer (assets/common.js), run in Chromium: Markdown in, DOM out, nothing executable."""

from __future__ import annotations

import pytest
from viz_helpers import make_report

from openchat_hf.visualization.eval_page import build_eval_page

pytestmark = pytest.mark.browser

CASES = [
    ("# Title\nsome text", "<h3>Title</h3><p>some text</p>"),
    ("line one\nline two\n\nnext paragraph", "<p>line one<br>line two</p><p>next paragraph</p>"),
    (
        "**bold** *it* `co*de*` ~~gone~~",
        "<p><strong>bold</strong> <em>it</em> <code>co*de*</code> <del>gone</del></p>",
    ),
    ("snake_case_name, my__dunder__var and 2 * 3 * 4", "<p>snake_case_name, my__dunder__var and 2 * 3 * 4</p>"),
    (
        "1. one\n   - nested <b>\n2. two",
        "<ol><li>one<ul><li>nested &lt;b&gt;</li></ul></li><li>two</li></ol>",
    ),
    ("- a\n- b", "<ul><li>a</li><li>b</li></ul>"),
    ("3. three\n4. four", '<ol start="3"><li>three</li><li>four</li></ol>'),
    ("> quoted **text**", "<blockquote><p>quoted <strong>text</strong></p></blockquote>"),
    (
        "| a | b |\n|---|:-:|\n| 1 | `2` |",
        '<table class="md-table"><thead><tr><th>a</th><th>b</th></tr></thead>'
        "<tbody><tr><td>1</td><td><code>2</code></td></tr></tbody></table>",
    ),
    (
        "```js\nalert('</script>')\n```",
        '<pre><span class="code-lang">js</span><code class="language-js">alert(\'&lt;/script&gt;\')</code></pre>',
    ),
    ("```\nunclosed <i>fence", "<pre><code>unclosed &lt;i&gt;fence</code></pre>"),
    ("---", "<hr>"),
    (
        "[ok](https://x.org/a?b=1) [js](javascript:alert(1)) [rel](/etc/passwd) [d](data:text/html,hi)",
        '<p><a href="https://x.org/a?b=1" rel="noopener noreferrer nofollow" target="_blank">ok</a> '
        "[js](javascript:alert(1)) [rel](/etc/passwd) [d](data:text/html,hi)</p>",
    ),
    (
        "see https://example.com/path. ![pic](https://example.com/p.png)",
        '<p>see <a href="https://example.com/path" rel="noopener noreferrer nofollow" target="_blank">'
        "https://example.com/path</a>. [image: pic]</p>",
    ),
    ("[JaVaScRiPt](JAVASCRIPT:alert(1))", "<p>[JaVaScRiPt](JAVASCRIPT:alert(1))</p>"),
    ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"),
]


def test_markdown_renderer(served, open_page):
    build_eval_page(make_report(), served.root / "md.html")
    watch = open_page(served.url("md.html"), "() => window.OC !== undefined")
    rendered = watch.page.evaluate(
        "cases => cases.map(c => OC.renderMarkdown(c, document.createElement('div')).innerHTML)",
        [source for source, _ in CASES],
    )
    for (source, expected), html in zip(CASES, rendered):
        assert html == expected, source
    watch.assert_clean()
