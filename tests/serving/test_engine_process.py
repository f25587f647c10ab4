"""``serve --engine-process``: the embedded backend in a child process, served to a real ``openai`` client."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest
from serving_helpers import MODEL_NAME, ServerThread

PROMPTS = ["Hi", "Tell me about ships.", "What is two and two?", "Name a colour."]
# Greedy: the tiny model's greedy answer to "Hi" runs to max_tokens; a sampled one may end with EOS within a few
# tokens (59 of 2000 once), before the hang-up or the kill the tests wait on.
LONG = {"stream": True, "temperature": 0}


def _app(backend):
    from openchat_hf.serving import ServerConfig, create_app

    return create_app(backend, ServerConfig(model_name=MODEL_NAME, max_batch_size=2))


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def _has_text(line: str) -> bool:
    """A chunk with answer text (the first chunk only names the role: it goes out before the request reaches the
    backend, so a client hanging up on it may cancel nothing)."""
    return line.startswith("data: {") and '"content":"' in line and '"content":""' not in line


def _answer(client, prompt: str, max_tokens: int = 12) -> tuple[str, int, str]:
    text, used, finish = "", 0, None
    for chunk in client.chat.completions.create(
        model=MODEL_NAME,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            used = chunk.usage.completion_tokens
    return text, used, finish


@pytest.fixture(scope="module")
def engine_server(chat_model_dir):
    """One server for the module: its shutdown stops the child (a new server's start would spawn another)."""
    from openchat_hf.serving.backends import load_backend

    backend = load_backend(chat_model_dir, max_batch_size=2, cpu_kernels="torch", engine_process=True)
    with ServerThread(_app(backend)) as server:
        yield backend, server


def test_answers_equal_the_in_process_backend(engine_server, chat_model_dir):
    from openchat_hf.serving.backends import load_backend

    engine, engine_url = engine_server[0], engine_server[1].url
    in_process = load_backend(chat_model_dir, max_batch_size=2, cpu_kernels="torch")
    with ServerThread(_app(in_process)) as server:
        answers = {"thread": [_answer(_client(server.url), prompt) for prompt in PROMPTS]}
    answers["process"] = [_answer(_client(engine_url), prompt) for prompt in PROMPTS]
    assert answers["process"] == answers["thread"]
    assert all(used >= 1 for _, used, _ in answers["process"])
    assert engine.response_formats == in_process.response_formats


def test_concurrent_streams_queue_behind_the_cap_and_metrics_see_the_child(engine_server):
    async def run(url: str) -> list:
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as client:

            async def one(prompt):
                reply = await client.chat.completions.create(
                    model=MODEL_NAME, messages=[{"role": "user", "content": prompt}], max_tokens=10, temperature=0
                )
                return reply.usage.completion_tokens

            return await asyncio.gather(*[one(p) for p in PROMPTS * 2])

    engine, server = engine_server
    before = engine.stats()
    used = asyncio.run(run(server.url))
    metrics = httpx.get(server.url + "/metrics").text
    after = engine.stats()
    assert after["finished"] - before.get("finished", 0) == 8 and sum(used) == after["generated_tokens"] - before.get(
        "generated_tokens", 0
    )
    assert after["max_batch"] <= 2 and after["running"] == 0
    count = next(line for line in metrics.splitlines() if line.startswith("openchat_hf_batch_size_count"))
    assert float(count.split()[-1]) > 0  # the child's decoding steps reached the histogram


def test_a_client_that_goes_away_cancels_its_sequence_in_the_child(engine_server):
    engine, server = engine_server
    before = engine.stats().get("cancelled", 0)
    body = {"model": MODEL_NAME, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2000}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json={**body, **LONG}) as response:
        next(line for line in response.iter_lines() if _has_text(line))  # the first token came: hang up
    deadline = time.time() + 20
    while engine.stats()["cancelled"] == before and time.time() < deadline:
        _answer(_client(server.url), "Hi", 2)
    assert engine.stats()["cancelled"] > before
    generated = engine.stats()["generated_tokens"]
    time.sleep(0.5)
    assert engine.stats()["generated_tokens"] == generated  # nothing runs on in the child


def test_a_dead_engine_ends_streams_with_an_error_event_then_answers_503(chat_model_dir):
    from openchat_hf.serving.backends import load_backend

    backend = load_backend(chat_model_dir, max_batch_size=2, cpu_kernels="torch", engine_process=True)
    try:
        with ServerThread(_app(backend)) as server:
            body = {"model": MODEL_NAME, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2000}
            with httpx.stream("POST", server.url + "/v1/chat/completions", json={**body, **LONG}) as response:
                lines = response.iter_lines()
                next(line for line in lines if _has_text(line))  # generating in the child
                backend._process.kill()
                rest = [line for line in lines if line]
            assert any('"error"' in line and "engine_failed" in line for line in rest) and rest[-1] == "data: [DONE]"
            backend._process.join(10)
            after = httpx.post(server.url + "/v1/chat/completions", json=body)
            assert after.status_code == 503 and after.json()["error"]["code"] == "engine_failed"
    finally:
        asyncio.run(backend.close())


def test_only_the_embedded_backend_runs_in_a_process(chat_model_dir):
    from openchat_hf.serving.backends import load_backend
    from openchat_hf.serving.errors import ServingError

    with pytest.raises(ServingError, match="embedded backend only"):
        load_backend(chat_model_dir, "openai", backend_url="http://127.0.0.1:9/v1", engine_process=True)


def test_close_stops_the_child_at_once(chat_model_dir):
    from openchat_hf.serving.backends import load_backend

    backend = load_backend(chat_model_dir, cpu_kernels="torch", engine_process=True)
    child = backend._process
    started = time.perf_counter()
    asyncio.run(backend.close())
    assert time.perf_counter() - started < 10 and not child.is_alive() and child.exitcode == 0
