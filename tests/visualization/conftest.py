"""Fixtures of the visualization tests: hand-made data, a loopback HTTP server and headless Chromium (Playwright).

Browser tests save screenshots under ``test-artifacts/visualization/`` (``$OPENCHAT_HF_TEST_ARTIFACTS`` overrides the
root). They never touch ``docs/images``: those come from a demo run (``python -m openchat_hf.visualization.screenshots``).
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("OPENCHAT_HF_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


@dataclass
class Served:
    root: Path
    base_url: str

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


@pytest.fixture
def served(tmp_path):
    """A folder served by a real HTTP server on 127.0.0.1 (free port)."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(root, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (never downloads a browser)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install it with `apt-get install -y chromium chromium-driver`.")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no `playwright install`)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageWatch:
    """A browser page with everything it logged, requested or tried to pop up."""

    page: object
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def outside_requests(self) -> list[str]:
        allowed_schemes = {"data", "blob", "about"}
        return [
            url
            for url in self.requests
            if urlparse(url).scheme not in allowed_schemes and urlparse(url).hostname not in ("127.0.0.1", "localhost")
        ]

    def assert_clean(self) -> None:
        assert self.page_errors == [], self.page_errors
        assert self.console_errors == [], self.console_errors
        assert self.outside_requests() == [], self.outside_requests()
        assert self.dialogs == [], self.dialogs


@pytest.fixture
def open_page(browser):
    """``open_page(url)`` -> a :class:`PageWatch` on a fresh page (closed after the test)."""
    contexts = []

    def open_(url: str, wait_for: str | None = None) -> PageWatch:
        context = browser.new_context(viewport={"width": 1400, "height": 850}, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        watch = PageWatch(page)
        page.on("console", lambda m: watch.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: watch.page_errors.append(str(e)))
        page.on("request", lambda r: watch.requests.append(r.url))

        def on_dialog(dialog):
            watch.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.goto(url)
        if wait_for:
            page.wait_for_function(wait_for, timeout=30_000)
        return watch

    yield open_
    for context in contexts:
        context.close()
