"""Waiting for a server (ours, or an upstream such as llama.cpp / vLLM / TGI) to answer ``GET /health``."""

from __future__ import annotations

import subprocess
import time


def wait_healthy(
    url: str, timeout: float = 180.0, *, process: subprocess.Popen | None = None, interval: float = 0.2
) -> None:
    """Return once ``url + "/health"`` answers 200.

    Raises ``ChildProcessError`` when ``process`` (the server's, if given) exits first, ``TimeoutError`` after
    ``timeout`` seconds.
    """
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ChildProcessError(f"the server exited with code {process.returncode} before it was ready")
        try:
            if httpx.get(url + "/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    raise TimeoutError(f"the server at {url} was not healthy after {timeout:.0f} s")
