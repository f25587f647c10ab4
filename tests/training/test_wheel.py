"""A fresh virtualenv with only the built wheel (no clone, no PYTHONPATH) trains the tiny recipe from elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from training_helpers import REPO_ROOT


def _run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{cmd}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_trains_the_packaged_tiny_recipe(tiny_llama_dir, pipeline_out, tmp_path):
    dist, venv, elsewhere = tmp_path / "dist", tmp_path / "venv", tmp_path / "elsewhere"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist),
          str(REPO_ROOT)], timeout=600)  # fmt: skip
    wheel = next(dist.glob("openchat_hf-*.whl"))
    _run([sys.executable, "-m", "venv", str(venv)], timeout=300)  # no --system-site-packages
    # nothing of the clone or the dev venv may leak in (PYTHONPATH would show the clone's egg-info as installed)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    elsewhere.mkdir()
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    # torch 2.13.0 CPU (pip's find-links on this machine); the rest from the registry, pip's cache makes reruns fast
    _run([*pip, "torch==2.13.0", f"{wheel}[train]"], cwd=elsewhere, env=env, timeout=1500)
    where = _run([str(venv / "bin" / "python"), "-c", "import openchat_hf, torch; print(openchat_hf.__file__, "
                  "torch.__version__)"], cwd=elsewhere, env=env, timeout=120)  # fmt: skip
    assert where.stdout.startswith(str(venv)) and "2.13.0" in where.stdout
    result = _run(
        [str(venv / "bin" / "openchat-hf"), "train", "--config", "tiny/sft/config_cpu.yaml",
         "--model_name_or_path", str(tiny_llama_dir), "--dataset_path", str(pipeline_out / "openchat"),
         "--output_dir", "ckpt", "--max_steps", "2", "--save_strategy", "no", "--disable_tqdm", "true"],
        cwd=elsewhere, env=env, timeout=900,
    )  # fmt: skip
    assert (elsewhere / "ckpt" / "model.safetensors").is_file()
    assert "tiny/sft/config_cpu.yaml" in (elsewhere / "ckpt" / "README.md").read_text()
    assert "Traceback" not in result.stderr
