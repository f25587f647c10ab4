"""Screenshots of a demo run's pages for the docs (``docs/images``), in headless Chromium through Playwright.

    python -m openchat_hf.visualization.screenshots DEMO_OUT [--out docs/images] [--chromium /usr/bin/chromium]

``DEMO_OUT`` is the folder ``openchat-hf demo`` wrote (``viz/*.embeddings.html``, ``viz/eval.html``, the checkpoint
and the data). The training page is built into ``DEMO_OUT/viz/training.html`` first when the run has none. Each page
is served from 127.0.0.1, opened at 1400x850, checked (no script error, no request leaving loopback, no machine path
of the run on screen), given one interaction that shows what it is for, and saved as ``OUT/<page>.png``. Needs the
``playwright`` package and a Chromium (Debian's ``chromium``; ``playwright install`` is never run).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

from openchat_hf.visualization.errors import VisualizationError

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
VIEWPORT = {"width": 1400, "height": 850}
READY = {
    "embeddings": "() => window.ocViz && window.ocViz.renderedAt !== null",
    "eval": "() => window.ocEval !== undefined",
    "training": "() => window.ocTraining !== undefined",
}
# One interaction per page, so the picture shows what the page is for.
INTERACT = {
    "embeddings": """() => {  // open the conversation nearest the middle of the largest group
        const s = window.ocViz.state;
        const biggest = s.groups.reduce((a, g, n) => (g.points.length > s.groups[a].points.length ? n : a), 0);
        document.getElementById('plot').emit('plotly_click', {points: [{curveNumber: biggest, pointNumber: 0}]});
    }""",
    "eval": "() => window.scrollTo(0, 0)",
    "training": "() => window.scrollTo(0, 0)",
}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D102 - silence the access log
        pass


def demo_pages(demo_out: str | Path) -> dict[str, Path]:
    """The demo's pages by kind (building the training page when the run has a checkpoint but no page)."""
    out = Path(demo_out)
    viz = out / "viz"
    if not viz.is_dir():
        raise VisualizationError(f"{viz} not found: pass the folder `openchat-hf demo --output-dir DIR` wrote.")
    pages: dict[str, Path] = {}
    embeddings = sorted(viz.glob("*.embeddings.html"))
    if embeddings:
        pages["embeddings"] = embeddings[0]
    if (viz / "eval.html").is_file():
        pages["eval"] = viz / "eval.html"
    training = viz / "training.html"
    if not training.is_file() and (out / "checkpoint").is_dir():
        from openchat_hf.visualization.training_page import build_training_page

        report = out / "data" / "report.json"
        build_training_page(out / "checkpoint", training, data_report=report if report.is_file() else None)
        print(f"built {training}")
    if training.is_file():
        pages["training"] = training
    if not pages:
        raise VisualizationError(f"No pages in {viz}: did the demo reach its last step?")
    return pages


def _machine_paths(demo_out: Path) -> list[str]:
    paths = {str(demo_out.resolve()), str(demo_out.absolute())}
    summary = demo_out / "demo_summary.json"
    if summary.is_file():  # the run's own paths, as the demo recorded them
        try:
            text = json.loads(summary.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            text = {}
        paths.update(str(Path(v).parent) for v in _strings(text) if v.startswith("/") and len(v) > 5)
    return sorted(p for p in paths if len(p) > 1)


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def take_screenshots(
    demo_out: str | Path, out_dir: str | Path, *, chromium: str | Path = "/usr/bin/chromium", browser=None
) -> dict[str, Path]:
    """Screenshot every page of a demo run into ``out_dir``; returns ``{kind: png}``.

    ``browser`` is an already launched Playwright browser to use (else Chromium is launched from ``chromium``).
    """
    demo_out = Path(demo_out)
    pages = demo_pages(demo_out)
    root = pages[next(iter(pages))].parent
    forbidden = _machine_paths(demo_out)
    out_dir = Path(out_dir)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        if browser is not None:
            return _shoot_all(browser, base, pages, out_dir, forbidden)
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as err:
            raise VisualizationError(
                "Screenshots need Playwright: pip install playwright (no `playwright install`)."
            ) from err
        if not Path(chromium).exists():
            raise VisualizationError(f"{chromium} not found: apt-get install -y chromium (or pass --chromium PATH).")
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            try:
                return _shoot_all(launched, base, pages, out_dir, forbidden)
            finally:
                launched.close()
    finally:
        server.shutdown()
        server.server_close()


def _shoot_all(browser, base: str, pages: dict[str, Path], out_dir: Path, forbidden: list[str]) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return {kind: _shoot(browser, f"{base}/{path.name}", kind, out_dir / f"{kind}.png", forbidden)
            for kind, path in pages.items()}  # fmt: skip


def _shoot(browser, url: str, kind: str, png: Path, forbidden: list[str]) -> Path:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
        page.on("console", lambda m: problems.append(f"console error: {m.text}") if m.type == "error" else None)
        page.on("request", lambda r: problems.append(f"request leaving loopback: {r.url}")
                if urlparse(r.url).scheme in ("http", "https") and urlparse(r.url).hostname != "127.0.0.1" else None)  # fmt: skip
        page.goto(url)
        page.wait_for_function(READY[kind], timeout=60_000)
        page.evaluate(INTERACT[kind])
        page.wait_for_timeout(500)
        shown = page.inner_text("body")
        problems += [f"shows the machine path {p}" for p in forbidden if p in shown]
        if problems:
            raise VisualizationError(f"{url}: " + "; ".join(problems))
        page.screenshot(path=str(png))
        return png
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo_out", type=Path, help="the folder `openchat-hf demo` wrote")
    parser.add_argument(
        "--out", type=Path, default=Path("docs/images"), help="where the PNGs go (default docs/images)"
    )
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable")
    args = parser.parse_args(argv)
    try:
        written = take_screenshots(args.demo_out, args.out, chromium=args.chromium)
    except VisualizationError as err:
        print(f"screenshots: error: {err}", file=sys.stderr)
        return 2
    for png in written.values():
        print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
