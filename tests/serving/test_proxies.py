"""The proxy backends: TGI (against a local server speaking TGI's wire format) and OpenAI-compatible (against our
own embedded server as the upstream). Greedy answers through a proxy equal the embedded server's answers."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
from serving_helpers import MODEL_NAME, ServerThread

from openchat_hf.serving import create_app
from openchat_hf.serving.backends.base import GenerationRequest, SamplingParams
from openchat_hf.serving.backends.openai import OpenAIBackend
from openchat_hf.serving.backends.tgi import TGIBackend
from openchat_hf.serving.backends.transformers import TransformersBackend
from openchat_hf.templates import ChatTemplate

HELLO = [{"role": "user", "content": "Tell me about llamas."}]
EOT = "<|end_of_turn|>"


def fake_tgi_app(backend: TransformersBackend, received: list):
    """TGI's ``/generate``, ``/generate_stream`` and ``/`` (dispatching on ``stream``), per TGI's OpenAPI schema,
    generating with a real model."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    async def tokens(payload):
        received.append(payload)
        p = payload.get("parameters") or {}
        ids = backend.tokenizer(payload["inputs"], add_special_tokens=False)["input_ids"]
        params = SamplingParams(
            max_tokens=p.get("max_new_tokens") or 20,
            temperature=(p.get("temperature") or 1.0) if p.get("do_sample") else 0.0,
            top_p=p.get("top_p") or 1.0,
            seed=p.get("seed"),
            frequency_penalty=p.get("frequency_penalty") or 0.0,
        )
        text, stops = "", p.get("stop") or []
        async for event in backend.stream(GenerationRequest(ids, payload["inputs"], params)):
            # TGI sends one event per token; a backend event can hold several (a reader that fell behind gets the
            # steps it missed at once): its text goes with its first token, the others carry none.
            pending = event.text
            for k, token_id in enumerate(event.token_ids):
                special = token_id in backend.eos_token_ids
                piece = backend.tokenizer.convert_ids_to_tokens(token_id) if special else pending
                pending = pending if special else ""
                text += "" if special else piece
                last = k == len(event.token_ids) - 1
                finish = {"stop": "eos_token", "length": "length"}.get(event.finish_reason) if last else None
                if not special and any(s in text for s in stops):
                    finish = "stop_sequence"
                yield {"id": token_id, "text": piece, "logprob": -1.0, "special": special}, text, finish, len(ids)
                if finish:
                    return

    async def generate(request: Request):
        payload = await request.json()
        all_tokens = []
        text, finish = "", None
        async for token, text, finish, _ in tokens(payload):  # noqa: B007 (the last values are the answer)
            all_tokens.append(token)
        details = {"finish_reason": finish, "generated_tokens": len(all_tokens), "seed": None, "prefill": []}
        return JSONResponse({"generated_text": text, "details": {**details, "tokens": all_tokens, "top_tokens": []}})

    async def generate_stream(request: Request):
        payload = await request.json()

        async def events():
            index = 0
            async for token, text, finish, input_length in tokens(payload):
                index += 1
                details = None
                if finish:
                    details = {"finish_reason": finish, "generated_tokens": index, "seed": None}
                    details["input_length"] = input_length
                chunk = {
                    "index": index,
                    "token": token,
                    "top_tokens": None,
                    "generated_text": text if finish else None,
                }
                yield f"data:{json.dumps({**chunk, 'details': details})}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def root(request: Request):
        payload = await request.json()
        return await (generate_stream(request) if payload.get("stream") else generate(request))

    async def health(request: Request):
        return JSONResponse({})

    routes = [
        Route("/health", health),
        Route("/", root, methods=["POST"]),
        Route("/generate", generate, methods=["POST"]),
        Route("/generate_stream", generate_stream, methods=["POST"]),
    ]
    return Starlette(routes=routes)


@pytest.fixture(scope="module")
def direct(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)


def answer(client, model=MODEL_NAME, stream=False, **kwargs):
    kwargs = {"messages": HELLO, "max_tokens": 12, "temperature": 0, **kwargs}
    if not stream:
        reply = client.chat.completions.create(model=model, **kwargs)
        choice = reply.choices[0]
        return choice.message.content, choice.finish_reason, reply.usage.prompt_tokens, reply.usage.completion_tokens
    chunks = list(
        client.chat.completions.create(model=model, stream=True, stream_options={"include_usage": True}, **kwargs)
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = next(c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason)
    return text, finish, chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens


@pytest.fixture(scope="module")
def tgi_proxy(backend):
    received: list = []
    upstream_backend = TransformersBackend(backend.model, backend.tokenizer)
    with ServerThread(fake_tgi_app(upstream_backend, received)) as upstream:
        proxy = TGIBackend(upstream.url, backend.tokenizer, backend.config, eot_token=EOT)
        with ServerThread(create_app(proxy, model_name=MODEL_NAME)) as running:
            running.received = received
            yield running
    asyncio.run(upstream_backend.close())


def test_fake_tgi_speaks_the_generate_route(tgi_proxy, backend):
    upstream = tgi_proxy.received  # the fake is reachable only through the proxy's backend URL
    proxy_backend = tgi_proxy.app.state.backend
    response = httpx.post(
        proxy_backend.url + "/generate", json={"inputs": "Human: hi", "parameters": {"max_new_tokens": 3}}
    )
    body = response.json()
    assert body["details"]["generated_tokens"] == 3 and body["details"]["finish_reason"] == "length"
    assert isinstance(body["generated_text"], str)
    assert upstream[-1]["inputs"] == "Human: hi"


def test_tgi_proxy_matches_the_embedded_server(tgi_proxy, direct, backend):
    client = openai.OpenAI(base_url=tgi_proxy.url + "/v1", api_key="unused", max_retries=0)
    expected = answer(direct)
    assert answer(client) == expected
    assert answer(client, stream=True) == expected
    payload = tgi_proxy.received[-1]
    template = ChatTemplate("openchat", backend.tokenizer)
    assert payload["inputs"] == template.render(HELLO, add_generation_prompt=True).text  # our prompt, not TGI's
    assert payload["stream"] is True and payload["parameters"]["details"] is True
    assert EOT in payload["parameters"]["stop"] and payload["parameters"]["do_sample"] is False

    stop = expected[0][5:8]
    cut = answer(client, stop=[stop])
    assert cut[0] == expected[0][: expected[0].index(stop)] and cut[1] == "stop"
    assert tgi_proxy.received[-1]["parameters"]["stop"] == [EOT, stop]

    seeded = answer(client, temperature=0.8, top_p=0.9, seed=5, max_tokens=15)
    assert seeded == answer(direct, temperature=0.8, top_p=0.9, seed=5, max_tokens=15)
    assert tgi_proxy.received[-1]["parameters"]["seed"] == 5

    with pytest.raises(openai.BadRequestError, match="presence_penalty"):
        answer(client, presence_penalty=0.5)


def test_openai_proxy_with_our_server_as_upstream(server, direct, backend):
    upstream = OpenAIBackend(server.url + "/v1", backend.tokenizer, backend.config, api_key="sk-test")
    with ServerThread(create_app(upstream, model_name="proxied")) as proxy:
        assert upstream.model == MODEL_NAME  # discovered from the upstream's /v1/models
        client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="unused", max_retries=0)
        expected = answer(direct)
        assert answer(client, model="proxied") == expected
        assert answer(client, model="proxied", stream=True) == expected
        kwargs = {"temperature": 0.7, "seed": 11, "max_tokens": 20, "frequency_penalty": 0.5}
        assert answer(client, model="proxied", **kwargs) == answer(direct, **kwargs)
        stop = expected[0][4:7]
        text, finish, _, _ = answer(client, model="proxied", stop=stop)
        assert (text, finish) == (expected[0][: expected[0].index(stop)], "stop")
        # The prompt is counted here, so an over-long conversation is a 400 before it reaches the upstream.
        with pytest.raises(openai.BadRequestError, match="context"):
            answer(client, model="proxied", messages=[{"role": "user", "content": "word " * 3000}])


def test_proxy_reports_an_unreachable_upstream(backend):
    from serving_helpers import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    proxy = TGIBackend(dead, backend.tokenizer, backend.config, eot_token=EOT)
    with ServerThread(create_app(proxy, model_name=MODEL_NAME)) as running:
        client = openai.OpenAI(base_url=running.url + "/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            answer(client)
        assert info.value.status_code == 502 and "Cannot reach" in str(info.value)
