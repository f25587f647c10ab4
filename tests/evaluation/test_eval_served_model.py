"""End to end with our own server: `openchat-hf serve` (tiny random-init OpenChat model, subprocess on a free port)
as the model under test -> eval answers -> judge (fake judge) -> report."""

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from openchat_hf.cli import main

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served_model(tiny_chat_dir):
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "openchat_hf.cli", "serve", str(tiny_chat_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"openchat-hf serve exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                pytest.fail("openchat-hf serve did not become healthy in 90 s")
            time.sleep(0.2)
        yield url + "/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_answers_from_our_server_judged_and_reported(tmp_path, served_model, judge_server):
    ids = ["1", "2", "3"]
    assert (
        main(
            [
                "eval",
                "answers",
                "--base-url",
                served_model,
                "--model",
                "tiny-openchat",
                "--out",
                str(tmp_path / "answers"),
                "--question-ids",
                *ids,
                "--max-tokens",
                "16",
                "--temperature",
                "0",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in (tmp_path / "answers" / "tiny-openchat.jsonl").read_text().splitlines()]
    assert sorted(str(r["question_id"]) for r in rows) == ids
    assert all(r["generation"]["temperature"] == 0 and r["usage"]["completion_tokens"] <= 16 for r in rows)
    assert (
        main(
            [
                "eval",
                "judge",
                "--answers",
                str(tmp_path / "answers" / "tiny-openchat.jsonl"),
                "--baseline",
                "gpt35",
                "--judge-base-url",
                judge_server.base_url,
                "--judge-model",
                "fake-judge",
                "--out",
                str(tmp_path / "judge"),
                "--question-ids",
                *ids,
            ]
        )
        == 0
    )
    assert main(["eval", "report", str(tmp_path / "judge"), "--out", str(tmp_path / "report")]) == 0
    (model,) = json.loads((tmp_path / "report" / "report.json").read_text())["models"]
    assert model["model"] == "tiny-openchat" and model["n_questions"] == 3
    # a random-init model's answers carry no quality marker: 6 like the baseline, so ties after both orders
    assert (model["ties"], model["failures"]) == (3, 0) and model["relative_score"] == 1.0
    assert [q["answer"] for q in model["questions"]] == [
        next(r["choices"][0]["turns"][0] for r in rows if r["question_id"] == q["question_id"])
        for q in model["questions"]
    ]
