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


def test_network_bind_without_a_key_is_refused_and_keys_come_from_a_file(chat_model_dir, tmp_path, capsys):
    from openchat_hf.cli import main

    assert main(["serve", str(chat_model_dir), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "Refusing to serve on 0.0.0.0 without an API key" in err and "Traceback" not in err
    assert main(["serve", str(chat_model_dir), "--api-key-file", str(tmp_path / "missing")]) == 2
    assert "Cannot read the API key file" in capsys.readouterr().err
    from openchat_hf.serving.security import read_key_file

    (tmp_path / "keys").write_text("# ops keys\nsk-a\n\n  sk-b  \n")
    assert read_key_file(tmp_path / "keys") == ["sk-a", "sk-b"]


def test_allowed_hosts_refuse_other_host_headers(backend):
    import httpx
    from serving_helpers import MODEL_NAME, ServerThread

    from openchat_hf.serving import create_app
    from openchat_hf.serving.backends.transformers import TransformersBackend

    app = create_app(
        TransformersBackend(backend.model, backend.tokenizer), model_name=MODEL_NAME, allowed_hosts=("127.0.0.1",)
    )
    with ServerThread(app) as srv:
        assert httpx.get(srv.url + "/health").status_code == 200
        rebound = httpx.get(srv.url + "/health", headers={"Host": "evil.example:80"})
        assert rebound.status_code == 400 and rebound.json()["error"]["code"] == "invalid_host"


def test_stream_interval_is_checked_before_loading(chat_model_dir, capsys):
    from openchat_hf.cli import main

    assert main(["serve", str(chat_model_dir), "--stream-interval", "0"]) == 2
    assert "--stream-interval must be at least 1" in capsys.readouterr().err
    proxy = ["--backend", "tgi", "--backend-url", "http://127.0.0.1:9", "--stream-interval", "4"]
    assert main(["serve", str(chat_model_dir), *proxy]) == 2
    assert "embedded backend only" in capsys.readouterr().err


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenMP starts no helper threads on one core")
def test_serve_keeps_the_main_thread_free_of_openmp_helpers():
    """The main thread must leave no OpenMP helper threads behind (the generation thread's kernels slow down when
    there are more of them than cores); without ``claim_cpu_threads`` a parallel kernel there starts one."""
    script = (
        "import os, sys, torch\n"
        "from openchat_hf.serving.cli import claim_cpu_threads\n"
        "default = torch.get_num_threads()\n"
        "threads = claim_cpu_threads(None) if sys.argv[1] == 'claim' else default\n"
        "before = len(os.listdir('/proc/self/task'))\n"
        "x = torch.randn(512, 512)\n"
        "for _ in range(3): (x @ x).sum()\n"
        "print(default, threads, torch.get_num_threads(), len(os.listdir('/proc/self/task')) - before)\n"
    )

    def run(mode: str) -> list[int]:
        done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return [int(v) for v in done.stdout.split()]

    default, threads, main_threads, new_tasks = run("claim")
    assert (threads, main_threads, new_tasks) == (default, 1, 0)  # the worker gets the count, main starts nobody
    default, _, main_threads, new_tasks = run("control")
    assert main_threads == default > 1 and new_tasks > 0
