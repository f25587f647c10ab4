"""ShareGPT HTML -> Markdown, with ChatGPT's page artefacts removed.

The conversion itself is done by the Rust ``html-to-markdown`` library; this module only normalises ChatGPT's code
block markup first (``<pre>`` holding a header with the language, a "Copy code" button and the ``<code>``) and cleans
the few artefacts ShareGPT pages carry in their text: regeneration counters (``1 / 2``) at the start of an answer and
"CopyN chars / N words" labels.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

# A ChatGPT code block: <pre> ... [<span>LANG</span>] [<button>...Copy code</button>] ... <code class=...>CODE</code> ... </pre>
_PRE_RE = re.compile(r"<pre\b[^>]*>(.*?)</pre>", re.DOTALL | re.IGNORECASE)
_CODE_RE = re.compile(r"<code\b([^>]*)>(.*?)</code>", re.DOTALL | re.IGNORECASE)
_CLASS_LANG_RE = re.compile(r"""class\s*=\s*["'][^"']*\blanguage-([\w+#.-]+)""", re.IGNORECASE)
_HEADER_LANG_RE = re.compile(r"<span\b[^>]*>\s*([\w+#.-]{1,30})\s*</span>\s*<button\b", re.IGNORECASE)
_BUTTON_RE = re.compile(r"<button\b[^>]*>.*?</button>", re.DOTALL | re.IGNORECASE)
_TAG_RE = re.compile(r"<[^>]+>")
_HTML_HINT_RE = re.compile(r"<(?:p|div|pre|code|ol|ul|li|h[1-6]|table|blockquote|span|br|strong|em|a)\b[^>]*>", re.I)

# Artefacts in the converted text.
_REGENERATE_RE = re.compile(r"\A\s*\d+\s*/\s*\d+\s*(?:\n|\Z)")
_COPY_CHARS_RE = re.compile(r"Copy\d+ chars? / \d+ words?")
_COPY_CODE_FENCE_RE = re.compile(r"```[ \t]*([\w+#.-]*)[ \t]*\n?[ \t]*Copy code[ \t]*\n?")
_EMPTY_FENCE_RE = re.compile(r"```[\w+#.-]*\s*```")
_MANY_NEWLINES_RE = re.compile(r"\n{3,}")


@lru_cache(maxsize=1)
def _converter() -> Callable[[str], str]:
    """``html -> markdown`` with our options, built once per process.

    ``html_to_markdown.convert`` re-translates the Python options to the Rust ones on every call (3x the cost of the
    conversion itself for a ShareGPT turn), so the Rust options are built once when the private API allows it.
    """
    from html_to_markdown import ConversionOptions, convert

    options = ConversionOptions(
        extract_metadata=False,
        compact_tables=True,
        bullets="-",
        autolinks=False,
        exclude_selectors=["button"],
        escape_asterisks=False,
        escape_underscores=False,
        escape_misc=False,
    )
    try:
        from html_to_markdown import _html_to_markdown as native
        from html_to_markdown.api import _to_rust_conversion_options

        rust_options = _to_rust_conversion_options(options)
        native.convert(html="<p>x</p>", options=rust_options, visitor=None)
    except (ImportError, AttributeError, TypeError):  # the private API moved: use the public one
        return lambda html: convert(html, options).content or ""
    return lambda html: native.convert(html=html, options=rust_options, visitor=None).content or ""


def looks_like_html(text: str) -> bool:
    """Whether a ShareGPT value is HTML (page dumps) rather than Markdown (cleaned dumps)."""
    return bool(_HTML_HINT_RE.search(text))


def _normalize_code_block(match: re.Match) -> str:
    inner = match.group(1)
    code = _CODE_RE.search(inner)
    if code is None:  # a plain <pre> without <code>: drop the button, keep the text
        return "<pre>" + _BUTTON_RE.sub("", inner) + "</pre>"
    lang = _CLASS_LANG_RE.search(code.group(1)) or _HEADER_LANG_RE.search(inner)
    body = _TAG_RE.sub("", code.group(2))  # highlight.js <span>s
    cls = f' class="language-{lang.group(1)}"' if lang else ""
    return f"<pre><code{cls}>{body}</code></pre>"


def clean_artifacts(markdown: str) -> str:
    """Remove ChatGPT artefacts from converted (or already-Markdown) text."""
    text = _REGENERATE_RE.sub("", markdown, count=1)
    text = _COPY_CHARS_RE.sub("", text)
    text = _COPY_CODE_FENCE_RE.sub(lambda m: f"```{m.group(1)}\n", text)
    text = _EMPTY_FENCE_RE.sub("", text)
    if "\n\n\n" in text:  # the converter rarely leaves any; the guard skips a full regex pass
        text = _MANY_NEWLINES_RE.sub("\n\n", text)
    return text.strip()


def html_to_markdown(value: str) -> str:
    """Convert one ShareGPT HTML value to clean Markdown.

    Keeps fenced code blocks with their language, inline code, nested lists, tables, headings, links and emphasis;
    removes "Copy code" buttons, regeneration counters and "CopyN chars / N words" labels.
    """
    if "<pre" in value or "<PRE" in value:
        value = _PRE_RE.sub(_normalize_code_block, value)
    return clean_artifacts(_converter()(value))


def to_markdown(value: str) -> str:
    """HTML values are converted to Markdown; Markdown values are only cleaned of artefacts."""
    if looks_like_html(value):
        return html_to_markdown(value)
    return clean_artifacts(value)
