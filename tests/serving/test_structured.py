"""``response_format`` (json_object / json_schema): constrained decoding on the embedded backend (llguidance),
streaming and not, passed through by the proxies, advertised in ``/v1/models``."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from serving_helpers import MODEL_NAME, ServerThread
from test_proxies import EOT, HELLO, fake_tgi_app

from openchat_hf.serving import create_app
from openchat_hf.serving.backends.openai import OpenAIBackend
from openchat_hf.serving.backends.tgi import TGIBackend
from openchat_hf.serving.backends.transformers import TransformersBackend

VERDICT = {
    "type": "object",
    "properties": {
        "winner": {"enum": ["A", "B", "tie"]},
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "ok": {"type": "boolean"},
    },
    "required": ["winner", "score", "ok"],
    "additionalProperties": False,
}
SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": VERDICT, "strict": True}}


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)


def ask(client, stream=False, model=MODEL_NAME, **kwargs):
    kwargs = {"messages": HELLO, "max_tokens": 40, "response_format": SCHEMA_FORMAT, **kwargs}
    if not stream:
        choice = client.chat.completions.create(model=model, **kwargs).choices[0]
        return choice.message.content, choice.finish_reason
    chunks = list(client.chat.completions.create(model=model, stream=True, **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason][0]


def check_verdict(text):
    value = json.loads(text)
    assert set(value) == {"winner", "score", "ok"}
    assert value["winner"] in ("A", "B", "tie") and 1 <= value["score"] <= 10 and isinstance(value["ok"], bool)
    return value


def test_models_advertise_response_formats(server):
    entry = httpx.get(server.url + "/v1/models", headers={"Authorization": "Bearer sk-test"}).json()["data"][0]
    assert entry["response_formats"] == ["text", "json_object", "json_schema"]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_json_schema_answers_match_the_schema_streaming_and_not(client, temperature):
    """The random-init model writes gibberish unconstrained; with the schema every answer is a valid verdict."""
    free, _ = ask(client, response_format={"type": "text"}, temperature=temperature, seed=3)
    with pytest.raises(ValueError):
        json.loads(free)
    for seed in range(3):
        text, finish = ask(client, temperature=temperature, seed=seed)
        assert finish == "stop", text  # the value was complete, then the end-of-turn token was forced
        check_verdict(text)
        assert ask(client, stream=True, temperature=temperature, seed=seed) == (text, "stop")


def test_json_object_answer_is_an_object_or_cut_by_max_tokens(client):
    for seed in range(3):
        text, finish = ask(client, response_format={"type": "json_object"}, temperature=1.0, seed=seed)
        assert text.startswith("{")
        if finish == "stop":
            assert isinstance(json.loads(text), dict)
        else:
            assert finish == "length"


def test_completions_endpoint_takes_response_format_too(server):
    body = {
        "model": MODEL_NAME,
        "prompt": "Verdict:",
        "max_tokens": 40,
        "temperature": 0,
        "response_format": SCHEMA_FORMAT,
    }
    reply = httpx.post(server.url + "/v1/completions", json=body, headers={"Authorization": "Bearer sk-test"})
    assert reply.status_code == 200, reply.text
    check_verdict(reply.json()["choices"][0]["text"])


def test_bad_schema_is_a_400_naming_response_format(client):
    bad = {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "integer", "minimum": 5, "maximum": 1}},
    }
    with pytest.raises(openai.BadRequestError) as info:
        ask(client, response_format=bad)
    assert info.value.body["param"] == "response_format"


def test_a_broken_grammar_row_fails_alone(backend):
    """A grammar that fails mid-way (here: a matcher that refuses every token) fails only its own sequence."""
    import asyncio

    from openchat_hf.serving.backends.base import GenerationRequest, SamplingParams
    from openchat_hf.serving.errors import ServingError
    from openchat_hf.templates import ChatTemplate

    fresh = TransformersBackend(backend.model, backend.tokenizer)
    ids = ChatTemplate("openchat", backend.tokenizer).tokenize(HELLO, add_generation_prompt=True).input_ids

    class Refusing:
        def allowed(self):
            raise RuntimeError("no token allowed")

    async def run():
        async def one(i):
            params = SamplingParams(10, temperature=0, json_schema=VERDICT if i == 0 else None)
            stream = fresh.stream(GenerationRequest(ids, "", params, incremental=False))
            try:
                return [e async for e in stream][-1].text
            except ServingError as err:
                return err

        original = fresh.structured.constraint
        fresh.structured.constraint = lambda grammar: Refusing()
        try:
            return await asyncio.gather(*[one(i) for i in range(4)])
        finally:
            fresh.structured.constraint = original
            await fresh.close()

    results = asyncio.run(run())
    assert isinstance(results[0], ServingError)
    assert len({r for r in results[1:]}) == 1 and isinstance(results[1], str)  # the same greedy answer, unharmed


def test_openai_proxy_passes_response_format_upstream(server, backend):
    upstream = OpenAIBackend(server.url + "/v1", backend.tokenizer, backend.config, api_key="sk-test")
    with ServerThread(create_app(upstream, model_name="proxied")) as proxy:
        c = openai.OpenAI(base_url=proxy.url + "/v1", api_key="unused", max_retries=0)
        text, finish = ask(c, model="proxied", temperature=0)
        assert finish == "stop"
        check_verdict(text)
        assert ask(c, model="proxied", stream=True, temperature=0) == (text, finish)


def test_tgi_proxy_sends_the_schema_as_grammar(backend):
    received: list = []
    with ServerThread(fake_tgi_app(TransformersBackend(backend.model, backend.tokenizer), received)) as upstream:
        proxy = TGIBackend(upstream.url, backend.tokenizer, backend.config, eot_token=EOT)
        with ServerThread(create_app(proxy, model_name=MODEL_NAME)) as running:
            c = openai.OpenAI(base_url=running.url + "/v1", api_key="unused", max_retries=0)
            ask(c, temperature=0, max_tokens=5)
    assert received[-1]["parameters"]["grammar"] == {"type": "json", "value": VERDICT}
