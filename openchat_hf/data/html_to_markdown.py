"""ShareGPT HTML -> Markdown, with ChatGPT's page artefacts removed; per-message detection of HTML and of escaped text.

The conversion itself is done by the Rust ``html-to-markdown`` library; this module only normalises ChatGPT's code
block markup first (``<pre>`` holding a header with the language, a "Copy code" button and the ``<code>``) and cleans
the few artefacts ShareGPT pages carry in their text: regeneration counters (``1 / 2``) at the start of an answer and
"CopyN chars / N words" labels.
"""

from __future__ import annotations

import html
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

# HTML detection (see looks_like_html).
_BLOCK_TAGS = r"(?:div|p|pre|ol|ul|table|h[1-6]|blockquote|span)"
_STARTS_WITH_BLOCK_RE = re.compile(r"\A\s*(?:\d+\s*/\s*\d+\s*)?<" + _BLOCK_TAGS + r"\b[^<>]*>", re.IGNORECASE)
_ENDS_WITH_CLOSE_RE = re.compile(r"(?:</" + _BLOCK_TAGS + r"\s*>|<(?:br|hr)\s*/?>)\s*\Z", re.IGNORECASE)
_PRE_SPAN_RE = re.compile(r"<pre\b.*?</pre\s*>", re.DOTALL | re.IGNORECASE)
_DOCUMENT_TAG_RE = re.compile(r"<(?:!doctype|html|head|body|script|style|meta|link|title)\b", re.IGNORECASE)
_MARKDOWN_FENCE_RE = re.compile(r"^[ \t]*(?:```|~~~)", re.MULTILINE)
_INDENTED_TAG_RE = re.compile(r"\n[ \t]+</?[a-zA-Z]")
_CHATGPT_CLASS_RE = re.compile(r"""<div\b[^>]*\bclass\s*=\s*["'][^"']*\b(?:markdown|prose)\b""", re.IGNORECASE)
# Escaped text (see looks_escaped).
_ENTITY_RE = re.compile(r"&(?:[a-zA-Z][a-zA-Z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
_BARE_AMP_RE = re.compile(r"&(?![a-zA-Z][a-zA-Z0-9]{1,31};|#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};)")

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
    """Whether one ShareGPT value is rendered HTML (as ChatGPT's page stored it) rather than Markdown or plain text.

    Decided per message, on the markup's shape, never on a tag found anywhere: the value must start with a block
    element (``<div>``, ``<p>``, ``<pre>``, lists, tables, headings; after an optional ``1 / 2`` regeneration
    counter) and end with a closing one, and outside its ``<pre>`` blocks it must have no Markdown code fence, no
    document-level tag (``<!DOCTYPE>``, ``<html>``, ``<head>``, ``<script>``, ``<style>``...: an answer that *is* an
    HTML page is code, and rendered chat text never has them unescaped) and, unless it carries ChatGPT's
    ``markdown prose`` wrapper, no hand-indented tags (HTML source laid out by a person, not a renderer).
    """
    # Cheap checks first (this runs on every message): the ends, then scans guarded by a substring test.
    if not _STARTS_WITH_BLOCK_RE.match(text) or not _ENDS_WITH_CLOSE_RE.search(text[-80:]):
        return False
    outside_pre = _PRE_SPAN_RE.sub(" ", text) if "<pre" in text or "<PRE" in text else text
    if _DOCUMENT_TAG_RE.search(outside_pre):
        return False
    if ("```" in outside_pre or "~~~" in outside_pre) and _MARKDOWN_FENCE_RE.search(outside_pre):
        return False
    return bool(_CHATGPT_CLASS_RE.search(text, 0, 600)) or not _INDENTED_TAG_RE.search(outside_pre)


def looks_escaped(text: str) -> bool:
    """Whether a (non-HTML) value is HTML-escaped text: it has entities (``&quot;``, ``&#x27;``, ``&lt;``...) and no
    character that escaping would have replaced (a raw ``<``, ``>`` or an ``&`` that starts no entity)."""
    if "&" not in text or not _ENTITY_RE.search(text):
        return False
    return "<" not in text and ">" not in text and not _BARE_AMP_RE.search(text)


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


def to_markdown(value: str, *, escaped: bool | None = None) -> str:
    """One ShareGPT value -> clean Markdown.

    HTML values (:func:`looks_like_html`) are converted; anything else is Markdown or plain text and only gets the
    artefacts removed, and its HTML entities decoded when it is escaped text: always when ``escaped`` is true (the
    values of a ShareGPT page), never when false, and when :func:`looks_escaped` says so when ``None``.
    """
    if looks_like_html(value):
        return html_to_markdown(value)
    if escaped or (escaped is None and looks_escaped(value)):
        value = html.unescape(value)
    return clean_artifacts(value)
