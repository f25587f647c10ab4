"""benchmarks/bench_llama_cpp.py without llama.cpp: its command line, and the no-EOS twin our server serves there."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "bench_llama_cpp.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_llama_cpp", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_runs_without_llama_cpp():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    for option in ("--llama", "--clients", "--max-tokens", "--threads", "--skip-q4"):
        assert option in out.stdout


def test_no_eos_twin_stops_on_nothing_and_shares_the_weights(tiny_chat_dir, tmp_path):
    """Our server's stand-in for llama-server's ``ignore_eos``: same weight file, no EOS anywhere in the configs."""
    from openchat_hf.serving.backends.transformers import TransformersBackend

    original = TransformersBackend.from_pretrained(tiny_chat_dir, device="cpu")
    assert original.eos_token_ids  # the patched folder stops on its EOT
    twin = _bench().no_eos_twin(Path(tiny_chat_dir), tmp_path / "twin")
    backend = TransformersBackend.from_pretrained(twin, device="cpu")
    assert backend.eos_token_ids == set()
    weights = [p for p in twin.iterdir() if p.suffix == ".safetensors"]
    assert weights and all(p.is_symlink() and p.resolve().parent == Path(tiny_chat_dir).resolve() for p in weights)
    assert (twin / "openchat_hf.json").is_file()  # the server still finds the model type
    _bench().no_eos_twin(Path(tiny_chat_dir), tmp_path / "twin")  # rerunnable


def test_also_starts_our_server_from_the_other_tree(tmp_path):
    """``--also NAME=SRC`` must run SRC's code: with only PYTHONPATH set, ``python -m`` from this checkout imported
    this checkout's package instead (the working directory comes first on sys.path)."""
    other = tmp_path / "other"
    (other / "openchat_hf").mkdir(parents=True)
    (other / "openchat_hf" / "__init__.py").write_text("TREE = 'other'\n")
    launch = _bench().tree_launch(other)
    probe = [sys.executable, "-c", "import openchat_hf; print(openchat_hf.TREE)"]
    done = subprocess.run(probe, capture_output=True, text=True, timeout=60, **launch)
    assert done.stdout.strip() == "other", done.stderr
    from_here = subprocess.run(probe, capture_output=True, text=True, timeout=60, env=launch["env"], cwd=REPO)
    assert "TREE" in from_here.stderr  # the trap: from this checkout, this checkout's package (no TREE) wins


def test_also_refuses_a_tree_without_the_package(tmp_path):
    with pytest.raises((SystemExit, subprocess.CalledProcessError)):
        _bench().tree_launch(tmp_path)
