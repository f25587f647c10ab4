"""The README's first command end to end: `openchat-hf demo --tiny` (the same loop on a tiny random-init model)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openchat_hf.demo import TINY_PLAN

SERVED_MODEL_NAME = TINY_PLAN.served_model_name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_demo_runs_the_whole_loop_and_reuses_its_outputs(tmp_path):
    out = tmp_path / "demo"
    cli = Path(sys.executable).parent / "openchat-hf"
    cmd = [str(cli), "demo", "--tiny", "--output-dir", str(out), "--port", str(_free_port()), "--questions", "2"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("OPENCHAT_JUDGE_BASE_URL", None)
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]

    summary = json.loads((out / "demo_summary.json").read_text())
    # 1. data: the report adds up and some conversations were kept.
    report = json.loads((out / "data" / "report.json").read_text())
    assert report["kept"] == summary["data"]["kept"] > 0
    dropped = sum(n for step in report["steps"].values() for n in step.values())
    assert report["kept"] + dropped == report["inputs"] > report["kept"]
    # 2-4. a trained checkpoint and a serving-ready export with the chat template and the EOT stop.
    for name in ("model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja"):
        assert (out / "checkpoint" / name).exists(), name
    exported = out / "export"
    assert json.loads((exported / "config.json").read_text())["openchat_model_type"] == "openchat"
    assert "<|end_of_turn|>" in json.loads((exported / "chat_template.json").read_text())["chat_template"]
    assert isinstance(json.loads((exported / "generation_config.json").read_text())["eos_token_id"], list)
    # 5. the served model answered through the openai client.
    assert summary["served_model"] == SERVED_MODEL_NAME
    # (the tiny random-init model may answer only whitespace: count its tokens, not its words)
    assert isinstance(summary["completion"], str) and summary["completion_tokens"] > 0
    assert f"model {SERVED_MODEL_NAME!r} answered" in first.stdout
    # 6. an evaluation report that says the tiny judge is meaningless.
    eval_report = json.loads((Path(summary["eval"]["report_dir"]) / "report.json").read_text())
    assert eval_report["models"][0]["model"] == SERVED_MODEL_NAME
    assert eval_report["models"][0]["n_questions"] == 2
    assert "meaningless" in eval_report["note"]
    # 7. two web pages, printed at the end.
    for page in summary["pages"].values():
        assert Path(page).stat().st_size > 10_000 and page in first.stdout

    # A second run reuses every finished step.
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    for step in ("data", "patched", "checkpoint", "export"):
        assert f"reusing {out / step}" in second.stdout

    # Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while the server is up stops everything.
    port = _free_port()
    log = tmp_path / "interrupted.log"
    with open(log, "w") as sink:
        run = subprocess.Popen(
            [*cmd[:5], "--port", str(port), "--questions", "20"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # As a terminal runs it: a shell without job control starts background jobs (`make test &`) with SIGINT
            # ignored, Python then installs no KeyboardInterrupt handler, and the whole tree would ignore Ctrl-C.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 300
        # Wait for the eval step's own process to be at work (its "N to go" line), not for the demo's echo of it.
        while "to go" not in log.read_text() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert run.poll() is None, log.read_text()[-3000:]
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=60) == 130
    assert "openchat-hf demo: interrupted" in log.read_text()
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))  # the server is gone: nothing listens on its port any more
