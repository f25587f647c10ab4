"""``wait_healthy``: what the demo, the benchmarks and the tests use to wait for a server."""

from __future__ import annotations

import subprocess
import sys

import pytest
from serving_helpers import free_port

from openchat_hf.serving.health import wait_healthy


def test_wait_healthy_returns_for_a_live_server_and_reports_exits_and_timeouts(server):
    wait_healthy(server.url, 5)
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dead.wait()
    with pytest.raises(ChildProcessError, match="code 3"):
        wait_healthy(f"http://127.0.0.1:{free_port()}", 30, process=dead)
    with pytest.raises(TimeoutError, match="not healthy after"):
        wait_healthy(f"http://127.0.0.1:{free_port()}", 0.5)
