"""The data benchmark runs end to end on a tiny corpus and prints its ratio tables."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_data.py"


@pytest.mark.slow
def test_bench_data_smoke(tmp_path):
    pytest.importorskip("sentencepiece")
    pytest.importorskip("markdownify")
    res = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--n",
            "240",
            "--small",
            "120",
            "--baseline-n",
            "120",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,  # minutes of wall time on a loaded 2-core VM
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "| **ratio ours / baseline** |" in res.stdout
    assert "| total (per input conversation) |" in res.stdout
    runs = [line.split("|") for line in res.stdout.splitlines() if line.startswith("| ours |")]
    runs = [r for r in runs if len(r) == 11]  # the per-run table, not the marginal-cost one
    assert [int(r[2]) for r in runs] == [120, 120, 240]
    assert all(0 < int(r[3]) <= int(r[2]) for r in runs)  # kept <= conversations
