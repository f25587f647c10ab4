"""`openchat-hf serve` / `python -m openchat_hf.serving` as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import openai
import pytest
from serving_helpers import free_port


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("server did not become healthy")


@pytest.mark.slow
def test_python_m_serving_end_to_end(chat_model_dir):
    port = free_port()
    env = {**os.environ, "OPENCHAT_API_KEYS": "k1,k2", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "openchat_hf.serving", str(chat_model_dir), "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--max-batch-size", "4"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        client = openai.OpenAI(base_url=url + "/v1", api_key="k2", max_retries=0)
        name = chat_model_dir.name  # the served name defaults to the folder's name
        assert [m.id for m in client.models.list().data] == [name]
        reply = client.chat.completions.create(
            model=name, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, temperature=0
        )
        assert reply.usage.completion_tokens == 4
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url + "/v1", api_key="k3", max_retries=0).models.list()
    finally:
        proc.terminate()
        proc.wait(30)
    assert "Hi" not in proc.stderr.read()  # no conversation logging by default


def test_cli_errors_are_one_line(tmp_path):
    from openchat_hf.cli import main

    assert main(["serve", str(tmp_path)]) == 2
    assert main(["serve", str(tmp_path), "--backend", "tgi"]) == 2


def test_cli_reports_a_missing_backend_url_and_model_type(chat_model_dir, tmp_path, capsys):
    import json
    import shutil

    from openchat_hf.cli import main

    assert main(["serve", str(chat_model_dir), "--backend", "openai"]) == 2
    assert "--backend-url" in capsys.readouterr().err
    plain = tmp_path / "plain"
    shutil.copytree(chat_model_dir, plain)
    config = json.loads((plain / "config.json").read_text())
    config.pop("openchat_model_type")
    (plain / "config.json").write_text(json.dumps(config))
    (plain / "openchat_hf.json").unlink(missing_ok=True)
    assert main(["serve", str(plain), "--port", "1"]) == 2
    assert "--model-type" in capsys.readouterr().err
