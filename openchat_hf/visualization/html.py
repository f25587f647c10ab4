"""Assemble self-contained, offline HTML pages: inlined plotly.js and page scripts, data as inert JSON.

Untrusted text never reaches the HTML parser as markup: the page data goes into a
``<script type="application/json">`` block with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped, and the page scripts
render it with ``textContent`` / DOM nodes only. As a second line of defence a Content-Security-Policy allows only the
page's own inline scripts (by SHA-256 hash, so inline event handlers never run) and no network access at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from openchat_hf.visualization.errors import VisualizationError

_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def safe_json(data: Any) -> str:
    """JSON that is inert inside a ``<script type="application/json">`` element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _JSON_ESCAPES[m.group(0)], text)


def asset(name: str) -> str:
    """The text of a file under ``openchat_hf/visualization/assets``."""
    return resources.files("openchat_hf.visualization").joinpath("assets", name).read_text(encoding="utf-8")


@cache
def plotly_js() -> str:
    """plotly.js (minified) from the installed ``plotly`` package."""
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    if "</script" in js.lower():  # cannot happen with current releases; never emit a broken page
        raise VisualizationError("The installed plotly.js contains '</script' and cannot be inlined.")
    return js


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def render_page(template: str, *, title: str, data: Any, scripts: list[str], csp: bool = True) -> str:
    """Fill an HTML template: ``{{HEAD}}`` (the pages' shared ``<head>``, ``assets/head.html``), ``{{TITLE}}``,
    ``{{CSP}}``, ``{{STYLE}}``, ``{{DATA}}`` and ``{{SCRIPTS}}``.

    ``scripts`` are inlined in order (plotly.js first). One regex pass fills every placeholder, so text inside the
    values is never substituted again.
    """
    template = template.replace("{{HEAD}}", asset("head.html").rstrip("\n"))
    for script in scripts:
        if "</script" in script.lower():
            raise VisualizationError("A page script contains '</script' and cannot be inlined.")
    policy = (
        "default-src 'none'; script-src " + " ".join(_sha256(s) for s in scripts) + "; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'"
    )
    values = {
        "TITLE": re.sub("[<>&\"']", lambda m: f"&#{ord(m.group(0))};", title),
        "CSP": f'<meta http-equiv="Content-Security-Policy" content="{policy}">' if csp else "",
        "STYLE": asset("page.css"),
        "DATA": safe_json(data),
        "SCRIPTS": "\n".join(f"<script>{s}</script>" for s in scripts),
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def write_page(path: str | Path, html: str) -> Path:
    """Write a page (creating its folder) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
