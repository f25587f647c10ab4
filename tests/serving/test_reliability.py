"""Reliability under hostile load: a poisoned request beside innocent ones, the batch cap read through /metrics,
the bounded queue (429), the drain contract on SIGTERM, and a served context taken from the model's RoPE."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from serving_helpers import MODEL_NAME, ServerThread, free_port

from openchat_hf.serving import create_app
from openchat_hf.serving.backends.base import GenerationRequest, SamplingParams
from openchat_hf.serving.backends.transformers import TransformersBackend
from openchat_hf.serving.errors import ServingError
from openchat_hf.templates import ChatTemplate

QUESTIONS = [[{"role": "user", "content": f"Question {i}: {'why ' * i}?"}] for i in range(8)]


def prompt_ids(backend, messages):
    return ChatTemplate("openchat", backend.tokenizer).tokenize(messages, add_generation_prompt=True).input_ids


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    values = [float(m.group(1)) for m in re.finditer(pattern, text, re.M)]
    assert values, f"{name}{labels} not in /metrics"
    return values[0]


# ----------------------------------------------------------------------------------------------- poison
def test_a_poisoned_row_fails_alone_and_innocent_answers_do_not_change(backend):
    """temperature=1e-39 overflows the logits to NaN; it used to fail all 8 sequences of the batch."""
    fresh = TransformersBackend(backend.model, backend.tokenizer, max_batch_size=16)

    async def run(poison: bool):
        async def one(i):
            temperature = 1e-39 if (poison and i == 3) else (0.0 if i % 2 == 0 else 0.8)
            params = SamplingParams(24, temperature=temperature, seed=100 + i)
            request = GenerationRequest(prompt_ids(fresh, QUESTIONS[i]), "", params, incremental=False)
            try:
                return [e async for e in fresh.stream(request)][-1].text
            except ServingError as err:
                return err

        try:
            return await asyncio.gather(*[one(i) for i in range(8)])
        finally:
            await fresh.close()

    clean, poisoned = asyncio.run(run(False)), asyncio.run(run(True))
    assert isinstance(poisoned[3], ServingError) and poisoned[3].status == 500
    assert [p for i, p in enumerate(poisoned) if i != 3] == [c for i, c in enumerate(clean) if i != 3]
    assert fresh.stats()["max_batch"] >= 2  # they did share batches


def test_tiny_temperature_over_http_is_clamped_and_every_stream_succeeds(server):
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)

    async def one(i, temperature):
        stream = await client.chat.completions.create(
            model=MODEL_NAME, messages=QUESTIONS[i], max_tokens=12, temperature=temperature, stream=True, seed=i
        )
        chunks = [c async for c in stream]
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks[-1].choices[0]

    async def run():
        async with client:
            alone = await asyncio.gather(*[one(i, 0) for i in range(8)])
            mixed = await asyncio.gather(*[one(i, 1e-39 if i == 0 else 0) for i in range(8)])
        return alone, mixed

    alone, mixed = asyncio.run(run())
    assert all(choice.finish_reason == "length" for _, choice in mixed)
    assert [text for text, _ in mixed[1:]] == [text for text, _ in alone[1:]]
    assert mixed[0][0] == alone[0][0]  # 1e-39 is raised to 0.01: as good as greedy on this model


# ------------------------------------------------------------------------------------------- batch cap
def test_backend_never_runs_more_than_its_cap(backend):
    capped = TransformersBackend(backend.model, backend.tokenizer, max_batch_size=4)
    sizes = []
    capped.on_step = sizes.append

    async def run():
        async def one(i):
            params = SamplingParams(6, temperature=0)
            return [
                e async for e in capped.stream(GenerationRequest(prompt_ids(capped, QUESTIONS[i % 8]), "", params))
            ]

        try:
            return await asyncio.gather(*[one(i) for i in range(16)])
        finally:
            await capped.close()

    results = asyncio.run(run())
    assert all(r[-1].completion_tokens == 6 for r in results)
    assert max(sizes) == 4 and capped.stats()["max_batch"] == 4  # was 16 with a cap of 4


def test_batch_cap_and_queue_seen_through_metrics(backend):
    capped = TransformersBackend(backend.model, backend.tokenizer, max_batch_size=4)
    app = create_app(capped, model_name=MODEL_NAME, max_queue=64)
    with ServerThread(app) as srv:
        seen_waiting = []

        def watch(stop):
            while not stop.is_set():
                text = httpx.get(srv.url + "/metrics").text
                seen_waiting.append(metric(text, "openchat_hf_requests_waiting"))
                assert metric(text, "openchat_hf_requests_running") <= 4
                time.sleep(0.02)

        stop = threading.Event()
        watcher = threading.Thread(target=watch, args=(stop,))
        watcher.start()

        async def run():
            client = openai.AsyncOpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0)
            async with client:

                async def one(i):
                    stream = await client.chat.completions.create(
                        model=MODEL_NAME, messages=QUESTIONS[i % 8], max_tokens=20, temperature=0, stream=True
                    )
                    return [c async for c in stream]

                return await asyncio.gather(*[one(i) for i in range(16)])

        try:
            results = asyncio.run(run())
        finally:
            stop.set()
            watcher.join()
        text = httpx.get(srv.url + "/metrics").text
    assert all(r[-1].choices[0].finish_reason == "length" for r in results)
    assert metric(text, "openchat_hf_batch_size_max") == 4
    steps = metric(text, "openchat_hf_batch_size_count")
    assert steps > 0 and metric(text, "openchat_hf_batch_size_bucket", '{le="4.0"}') == steps
    assert max(seen_waiting) > 0  # requests did queue for the batch
    assert metric(text, "openchat_hf_generation_tokens_total") == 16 * 20
    assert metric(text, "openchat_hf_time_to_first_token_seconds_count") == 16
    assert metric(text, "openchat_hf_request_success_total", '{finish_reason="length"}') == 16


class SlowBackend(TransformersBackend):
    """The real backend, 10 ms slower per decoding step, so that a request is surely still running."""

    def _step(self, batch):
        time.sleep(0.01)
        return super()._step(batch)


def test_full_queue_is_429_with_retry_after_and_drain_is_503(backend):
    capped = SlowBackend(backend.model, backend.tokenizer, max_batch_size=1)
    app = create_app(capped, model_name=MODEL_NAME, max_batch_size=1, max_queue=1)
    body = {"model": MODEL_NAME, "messages": QUESTIONS[1], "max_tokens": 1500, "temperature": 0, "stream": True}
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as first:
            first_lines = first.iter_lines()  # keep the iterator: dropping it closes the stream
            next(first_lines)
            with httpx.stream("POST", srv.url + "/v1/chat/completions", json=body, timeout=30) as second:
                assert second.status_code == 200  # it waits in the queue
                third = httpx.post(srv.url + "/v1/chat/completions", json={**body, "stream": False})
                assert third.status_code == 429 and third.headers["retry-after"] == "1"
                assert third.json()["error"]["code"] == "server_overloaded"
                app.state.service.admission.begin_drain(60)
                deadline = time.time() + 5
                while not app.state.service.admission.draining and time.time() < deadline:
                    time.sleep(0.01)
                fourth = httpx.post(srv.url + "/v1/chat/completions", json=body)
                assert fourth.status_code == 503 and "retry-after" in fourth.headers
                assert fourth.json()["error"]["code"] == "server_shutting_down"
                assert httpx.get(srv.url + "/health").json()["status"] == "draining"
                app.state.service.admission.abort()  # grace over: both streams end with an error and [DONE]
                for lines in (first_lines, second.iter_lines()):
                    lines = [line for line in lines if line]
                    assert lines[-1] == "data: [DONE]"
                    assert json.loads(lines[-2][6:])["error"]["code"] == "server_shutting_down"
        errors = httpx.get(srv.url + "/metrics").text
    assert metric(errors, "openchat_hf_request_errors_total", '{code="server_overloaded",status="429"}') == 1


# ---------------------------------------------------------------------------------------------- SIGTERM
def _no_eos_twin(model_dir: Path, out: Path) -> Path:
    """The benchmarks' stand-in for ``ignore_eos`` (``bench_llama_cpp.no_eos_twin``): the same folder, no EOS."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_llama_cpp.py"
    spec = importlib.util.spec_from_file_location("bench_llama_cpp", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.no_eos_twin(model_dir, out)


@pytest.mark.slow
def test_sigterm_drains_then_ends_every_request_with_an_openai_error(chat_model_dir, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    # No EOS: a sampled end of turn cannot finish the long requests inside the grace (it did, once the server got
    # faster: 16 choices x 1900 tokens sometimes all ended early with `stop`).
    served = _no_eos_twin(Path(chat_model_dir), tmp_path / "noeos" / MODEL_NAME)
    cmd = [sys.executable, "-m", "openchat_hf.serving", str(served), "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--shutdown-grace", "5", "--max-batch-size", "72"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 240  # importing torch + transformers takes long on a loaded 2-core machine
        while time.time() < deadline and proc.poll() is None:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        # n=16 choices each: a batch of 64 sequences, so 1900 tokens (no EOS to stop earlier) outlast the grace
        long = {"model": MODEL_NAME, "messages": QUESTIONS[2], "max_tokens": 1900, "temperature": 0.7, "n": 16}
        results: dict = {}
        short_started = threading.Event()

        def stream(name, body):
            with httpx.stream("POST", url + "/v1/chat/completions", json={**body, "stream": True}, timeout=90) as r:
                results[name] = []
                for line in r.iter_lines():
                    if line:
                        results[name].append(line)
                        if name == "short" and '"content":"' in line and '"content":""' not in line:
                            short_started.set()  # its first token is out

        def plain(name, body):
            results[name] = httpx.post(url + "/v1/chat/completions", json=body, timeout=90)

        threads = [threading.Thread(target=stream, args=(f"stream{i}", long)) for i in range(3)]
        threads.append(threading.Thread(target=plain, args=("long", long)))
        for t in threads:
            t.start()
        deadline = time.time() + 60
        while time.time() < deadline:  # all four are generating
            if metric(httpx.get(url + "/metrics").text, "openchat_hf_requests_running") >= 64:
                break
            time.sleep(0.05)
        short = threading.Thread(target=stream, args=("short", {**long, "max_tokens": 3, "n": 1}))
        short.start()
        assert short_started.wait(60)
        proc.send_signal(signal.SIGTERM)
        for t in [*threads, short]:
            t.join(90)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Traceback" not in out
    assert results["short"][-1] == "data: [DONE]"  # drained: finished within the grace
    assert json.loads(results["short"][-2][6:]).get("choices", [{}])[0].get("finish_reason") == "length", [
        line[-120:] for line in results["short"]
    ]
    assert results["long"].status_code == 503
    assert results["long"].json()["error"]["code"] == "server_shutting_down"
    for i in range(3):
        lines = results[f"stream{i}"]
        assert lines[-1] == "data: [DONE]", lines[-3:]
        assert json.loads(lines[-2][6:])["error"]["code"] == "server_shutting_down"
        assert len(lines) > 5  # it streamed for a while before the grace ended


# ------------------------------------------------------------------------------------------ context (15.1)
def test_model_extended_by_dynamic_rope_is_served_with_its_context(tiny_llama_dir, tmp_path):
    """Serving computed the context itself (2048 here); it must come from modeling.context.context_length."""
    from openchat_hf.modeling import patch_model
    from openchat_hf.modeling.context import context_length
    from openchat_hf.serving.backends import load_backend

    folder = patch_model(tiny_llama_dir, tmp_path / "m8192", "openchat_8192", context_method="dynamic")
    served = load_backend(folder)
    assert served.config.max_position_embeddings < 8192  # dynamic NTK keeps the pre-training length here
    assert context_length(served.config) == served.max_context == 8192
    app = create_app(served, model_name=MODEL_NAME)
    with ServerThread(app) as srv:
        entry = httpx.get(srv.url + "/v1/models").json()["data"][0]
        assert entry["max_model_len"] == 8192
        body = {
            "model": MODEL_NAME,
            "messages": [{"role": "user", "content": "word " * 2500}],
            "max_tokens": 2,
            "temperature": 0,
        }
        reply = httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=120)
        assert reply.status_code == 200, reply.text
        assert 2500 < reply.json()["usage"]["prompt_tokens"] < 8192
