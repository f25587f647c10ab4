"""Answer generation against a fake model server over real HTTP: multi-turn context, settings, resumability."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import endpoint
from eval_fakes import FakeOpenAI

from openchat_hf.evaluation.answers import AnswerConfig, generate_answers
from openchat_hf.evaluation.errors import EvaluationError
from openchat_hf.evaluation.records import load_answers, read_rows


def config(tmp_path, server, **kwargs):
    return AnswerConfig(endpoint=endpoint(server, model="org/tiny:v1"), out_dir=tmp_path / "answers", **kwargs)


def test_vicuna_answers_with_recorded_settings(tmp_path, model_server):
    result = generate_answers(config(tmp_path, model_server, limit=5, concurrency=3, max_tokens=64))
    assert result.path.name == "org_tiny_v1.jsonl" and result.written == 5
    rows = read_rows(result.path)
    assert sorted(r["question_id"] for r in rows) == [1, 2, 3, 4, 5]
    assert all(r["generation"] == {"model": "org/tiny:v1", "temperature": 0.7, "max_tokens": 64} for r in rows)
    assert {r["max_tokens"] for r in model_server.requests} == {64}
    answers = load_answers(result.path)
    assert answers.model == "org/tiny:v1"
    assert answers.first_turn(1).startswith("A GOOD answer to 'How can I improve my time management")


def test_mt_bench_second_turn_sees_the_first(tmp_path, model_server):
    result = generate_answers(config(tmp_path, model_server, bench="mt_bench", question_ids=["81", "111"]))
    rows = {r["question_id"]: r for r in read_rows(result.path)}
    assert len(rows[81]["choices"][0]["turns"]) == 2
    assert rows[81]["generation"]["temperature"] == 0.7 and rows[111]["generation"]["temperature"] == 0.0
    second = [r for r in model_server.requests if len(r["messages"]) == 3]
    assert len(second) == 2
    for request in second:
        roles = [m["role"] for m in request["messages"]]
        assert roles == ["user", "assistant", "user"]
        qid = 81 if "Hawaii" in request["messages"][0]["content"] else 111
        assert request["messages"][1]["content"] == rows[qid]["choices"][0]["turns"][0]
    assert "following up on" in rows[81]["choices"][0]["turns"][1]


def test_rerun_skips_finished_and_an_outage_loses_nothing(tmp_path, model_server):
    model_server.down = True
    cfg = config(tmp_path, model_server, limit=4)
    cfg.endpoint.max_retries = 1
    result = generate_answers(cfg)
    assert result.written == 0 and len(result.failed) == 4
    model_server.down = False
    result = generate_answers(config(tmp_path, model_server, limit=2))
    assert result.written == 2
    before = model_server.chat_calls
    result = generate_answers(config(tmp_path, model_server, limit=4))
    assert (result.written, result.skipped) == (2, 2) and model_server.chat_calls - before == 2
    assert sorted(r["question_id"] for r in read_rows(result.path)) == [1, 2, 3, 4]


def test_changed_settings_refuse_to_mix(tmp_path, model_server):
    generate_answers(config(tmp_path, model_server, limit=1))
    with pytest.raises(EvaluationError, match="other settings"):
        generate_answers(config(tmp_path, model_server, limit=2, temperature=0.0))


def test_bad_selection_is_a_clear_error(tmp_path, model_server):
    with pytest.raises(EvaluationError, match="unknown question ids: 999"):
        generate_answers(config(tmp_path, model_server, question_ids=["999"]))
    with pytest.raises(EvaluationError, match="unknown bench"):
        generate_answers(config(tmp_path, model_server, bench="nope"))


def test_a_killed_run_loses_only_in_flight_rows(tmp_path):
    with FakeOpenAI("model", delay=0.25) as server:
        out = tmp_path / "answers"
        cmd = [
            sys.executable,
            "-m",
            "openchat_hf.evaluation.answers",
            "--base-url",
            server.base_url,
            "--model",
            "tiny",
            "--out",
            str(out),
            "--limit",
            "12",
            "--concurrency",
            "2",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        path = out / "tiny.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline and len(read_rows(path)) < 4:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kept = read_rows(path)
        assert 4 <= len(kept) < 12
        assert all(json.loads(line) for line in path.read_text().splitlines())
        time.sleep(0.5)  # let the server finish the requests the killed run left in flight
        before = server.chat_calls
        assert subprocess.run(cmd, capture_output=True).returncode == 0
        rows = read_rows(path)
        assert sorted(r["question_id"] for r in rows) == list(range(1, 13))
        assert server.chat_calls - before == 12 - len(kept)


def test_a_wrong_endpoint_fails_fast_with_the_status(tmp_path, model_server):
    cfg = config(tmp_path, model_server, limit=2)
    cfg.endpoint.base_url = model_server.base_url.removesuffix("/v1")  # POST /chat/completions -> 404
    with pytest.raises(EvaluationError, match="HTTP 404"):
        generate_answers(cfg)
    assert model_server.chat_calls == 0 and read_rows(cfg.out_path) == []


def test_a_half_written_last_line_is_dropped_and_redone(tmp_path, model_server):
    generate_answers(config(tmp_path, model_server, limit=1))
    path = tmp_path / "answers" / "org_tiny_v1.jsonl"
    with open(path, "a") as f:
        f.write('{"question_id": 2, "answer_id": "cut sho')  # a crash mid-write
    result = generate_answers(config(tmp_path, model_server, limit=3))
    assert (result.written, result.skipped) == (2, 1)
    lines = path.read_text().splitlines()  # every line parses: the cut one is gone
    assert sorted(json.loads(line)["question_id"] for line in lines) == [1, 2, 3]
