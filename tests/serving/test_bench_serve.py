"""benchmarks/bench_serve.py's two stand-ins, served by the real app to a real ``openai`` client: the one-at-a-time
baseline streams every 6 tokens as OpenChat v1's server did, and the no-model ceiling chunks as the embedded backend."""

from __future__ import annotations

import asyncio
import importlib.util
import math
from pathlib import Path

import openai
import pytest
from serving_helpers import MODEL_NAME, ServerThread

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_serve.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_serve", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_and_tokenizer(chat_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(chat_model_dir).eval(), AutoTokenizer.from_pretrained(chat_model_dir)


def _stream(backend, max_tokens: int, **config) -> tuple[list[str], str | None, int]:
    """The content chunks, finish reason and completion tokens of one greedy streamed answer."""
    from openchat_hf.serving import ServerConfig, create_app

    with ServerThread(create_app(backend, ServerConfig(model_name=MODEL_NAME, **config))) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        chunks, finish, used = [], None, 0
        for chunk in client.chat.completions.create(
            model=MODEL_NAME,
            messages=[{"role": "user", "content": "Tell me about the sea and the ships on it."}],
            max_tokens=max_tokens,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                chunks.append(chunk.choices[0].delta.content)
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
            if chunk.usage is not None:
                used = chunk.usage.completion_tokens
    return chunks, finish, used


def test_the_baseline_streams_every_six_tokens_like_openchat_v1(bench, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    eos = [tokenizer.convert_tokens_to_ids("<|end_of_turn|>")]
    every_six, finish, used = _stream(bench.SequentialBackend(model, tokenizer, eos), 40)
    whole, whole_finish, whole_used = _stream(bench.SequentialBackend(model, tokenizer, eos, stream_tokens=0), 40)
    assert used >= 13, "the tiny model's greedy answer is too short to show the chunking"
    assert len(whole) == 1 and 2 <= len(every_six) <= math.ceil(used / 6)  # one chunk per answer before
    assert "".join(every_six) == whole[0]
    assert (finish, used) == (whole_finish, whole_used)


def test_the_no_model_ceiling_chunks_like_the_embedded_backend(bench, model_and_tokenizer):
    from openchat_hf.serving.backends.base import GenerationRequest, SamplingParams

    model, tokenizer = model_and_tokenizer
    backend = bench.NoModelBackend(tokenizer, model.config)

    async def counts(**request) -> list[tuple[int, int, str | None]]:
        events = backend.stream(GenerationRequest([1], "", SamplingParams(max_tokens=10), **request))
        return [(event.completion_tokens, len(event.token_ids), event.finish_reason) async for event in events]

    # The first token at once, then one event per 4 tokens, and the last: the embedded backend's rule.
    assert asyncio.run(counts(stream_interval=4)) == [(1, 1, None), (5, 4, None), (9, 4, None), (10, 1, "length")]
    assert asyncio.run(counts(incremental=False)) == [(10, 10, "length")]
    chunks, finish, used = _stream(backend, 10, stream_interval=4)
    assert len(chunks) == 4 and "".join(chunks) == ("word " * 10).strip() and (finish, used) == ("length", 10)


@pytest.mark.parametrize("assignment", ["pool", "per-client"])
def test_pooled_clients_take_the_next_request_when_free(bench, model_and_tokenizer, assignment):
    """With a shared list, the client whose request was short takes the next one while the other client is still
    on a long one; with per-client plans it stops when its own are done (the batch then runs part-empty)."""
    from openchat_hf.serving import ServerConfig, create_app

    model, tokenizer = model_and_tokenizer
    spans: dict[str, list[float]] = {}

    class Timed(bench.NoModelBackend):
        async def stream(self, request):
            name = next(word for word in ("slow-a", "slow-b", "fast-c", "fast-d") if word in request.prompt_text)
            spans[name] = [asyncio.get_running_loop().time()]
            await asyncio.sleep(0.6 if name.startswith("slow") else 0.01)
            try:
                async for event in super().stream(request):
                    yield event
            finally:  # the server closes the stream at its last event
                spans[name].append(asyncio.get_running_loop().time())

    # per-client: client 0 sends slow-a then slow-b, client 1 fast-c then fast-d; pooled, in the order they start:
    # slow-a, fast-c, slow-b, fast-d.
    prompts = ["slow-a", "slow-b", "fast-c", "fast-d"]
    app = create_app(Timed(tokenizer, model.config), ServerConfig(model_name=MODEL_NAME))
    with ServerThread(app) as server:
        result = asyncio.run(
            bench.run_clients(
                server.url, 2, 2, 0, model=MODEL_NAME, max_tokens=3, prompts=prompts, assignment=assignment
            )
        )
    assert result["requests"] == 4 and result["tokens"] == 12  # the same work either way
    overlapped = spans["slow-b"][0] < spans["slow-a"][1]
    assert overlapped == (assignment == "pool")
