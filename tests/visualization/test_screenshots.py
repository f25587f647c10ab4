"""The docs-screenshot tool on a demo-shaped output folder (pages built here; the PNGs go to a temporary folder)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from test_training_page import _state
from viz_helpers import make_report, rendered, sample_messages, write_report

from openchat_hf.visualization import VisualizationError, build_embeddings_page, build_eval_page
from openchat_hf.visualization.embeddings_page import visualizer_data
from openchat_hf.visualization.screenshots import demo_pages, take_screenshots

pytestmark = pytest.mark.browser


def _demo(root, source_name: str = "data"):
    """A folder laid out as `openchat-hf demo --output-dir` leaves it."""
    texts = rendered(sample_messages() * 4)
    coords = np.random.default_rng(0).normal(size=(len(texts), 3))
    build_embeddings_page(visualizer_data(texts, coords, np.arange(len(texts)) % 3), root / "viz" / "openchat.embeddings.html",
                          meta={"source": source_name, "cluster_terms": {"0": ["sort", "python"]}})  # fmt: skip
    build_eval_page(write_report(root / "eval" / "report", make_report()), root / "viz")
    _state(root / "checkpoint", [{"step": s, "loss": 3.0 / s, "train_tokens_per_second": 80.0 + s,
                                  "tokens_per_step": 2000.0, "supervised_tokens_per_step": 900.0} for s in (1, 2, 3)])  # fmt: skip
    return root


def _png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_screenshots_of_every_demo_page(tmp_path, capsys, browser):
    demo = _demo(tmp_path / "demo")
    written = take_screenshots(demo, tmp_path / "images", browser=browser)
    assert f"built {demo / 'viz' / 'training.html'}" in capsys.readouterr().out  # made from the checkpoint
    assert written == {kind: tmp_path / "images" / f"{kind}.png" for kind in ("embeddings", "eval", "training")}
    for png in written.values():
        assert _png_size(png) == (1400, 850)
    assert set(demo_pages(demo)) == {"embeddings", "eval", "training"}


def test_a_page_showing_a_machine_path_is_refused(tmp_path, browser):
    demo = _demo(tmp_path / "demo", source_name=str(tmp_path / "demo" / "data" / "clean"))
    with pytest.raises(VisualizationError, match="shows the machine path"):
        take_screenshots(demo, tmp_path / "images", browser=browser)
    with pytest.raises(VisualizationError, match="pass the folder `openchat-hf demo --output-dir DIR` wrote"):
        demo_pages(tmp_path / "nowhere")


def test_cli_runs_its_own_chromium(tmp_path, capsys):
    """`python -m openchat_hf.visualization.screenshots` as the lead runs it (its own Playwright and Chromium)."""
    import subprocess
    import sys

    demo = _demo(tmp_path / "demo")
    result = subprocess.run([sys.executable, "-m", "openchat_hf.visualization.screenshots", str(demo), "--out",
                             str(tmp_path / "images")], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"wrote {tmp_path / 'images' / 'eval.png'}" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "openchat_hf.visualization.screenshots", str(tmp_path / "nowhere")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("screenshots: error:") and bad.stderr.count("\n") == 1
