"""Client mistakes get OpenAI-shaped 4xx errors; a sweep of hostile requests leaves the server healthy."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from serving_helpers import MODEL_NAME, ServerThread

from openchat_hf.serving import create_app
from openchat_hf.serving.backends.transformers import TransformersBackend

AUTH = {"Authorization": "Bearer sk-test"}
GOOD = {"model": MODEL_NAME, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


def post(server, body, headers=AUTH, path="/v1/chat/completions"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(server.url + path, content=data, headers={**headers, "Content-Type": "application/json"})


def assert_error(response, status, param=None, code=None, contains=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "Traceback" not in error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    if contains is not None:
        assert contains in error["message"]
    return error


def with_(**changes):
    body = {**GOOD, **changes}
    return {k: v for k, v in body.items() if v is not ...}


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        (b"{not json", 400, None, "invalid_json"),
        (b"[1, 2]", 400, None, "invalid_body"),
        (b"", 400, None, "invalid_json"),
        (with_(messages=[]), 400, "messages", None),
        (with_(messages=...), 400, "messages", None),
        (with_(messages=[{"role": "tool", "content": "x"}]), 400, "messages.0.role", None),
        (with_(messages=[{"role": "user", "content": 5}]), 400, "messages.0.content", None),
        (
            with_(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
            400,
            None,
            None,
        ),
        (
            with_(messages=[{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]),
            400,
            "messages",
            None,
        ),
        (with_(temperature="hot"), 400, "temperature", None),
        (with_(temperature=5), 400, "temperature", None),
        (with_(max_tokens=0), 400, "max_tokens", None),
        (with_(max_tokens=True), 400, "max_tokens", None),
        (with_(n=100), 400, "n", None),
        (with_(stop=["a", "b", "c", "d", "e"]), 400, "stop", None),
        (with_(stream="yes"), 400, "stream", None),
        (with_(logit_bias={"1": 5}), 400, "logit_bias", "unsupported_parameter"),
        (with_(tools=[{"type": "function"}]), 400, "tools", "unsupported_parameter"),
        (with_(response_format={"type": "xml"}), 400, "response_format.type", None),
        (with_(response_format={"type": "json_schema"}), 400, "response_format", None),
        (with_(response_format={"type": "json_schema", "json_schema": {"schema": {"type": 5}}}), 400, None, None),
        (with_(stream_options={"include_usage": True}), 400, "stream_options", None),
        (with_(stream=False, stream_options={"include_usage": True}), 400, "stream_options", None),
        (with_(messages=[{"role": "user", "content": "a", "name": "bob"}]), 400, "messages.0.name", None),
        (with_(stop="x" * 1001), 400, "stop", None),
        (with_(messages=[{"role": "user", "content": "\ud800"}]), 400, None, "invalid_text"),
        (with_(model="\udfff"), 400, None, "invalid_text"),
        (with_(**{"\ud800": 1}), 400, None, "invalid_text"),
        (with_(tools=[{"type": "function"}], tool_choice="none"), 400, "tools", "unsupported_parameter"),
        (with_(logprobs=True), 400, "logprobs", "unsupported_parameter"),
        (with_(foo=1), 400, "foo", "unknown_parameter"),
        (with_(model="gpt-4"), 404, "model", "model_not_found"),
        (with_(seed=2**70), 400, "seed", None),
        (with_(model=...), 400, "model", None),
    ],
)
def test_bad_requests(server, body, status, param, code):
    assert_error(post(server, body), status, param, code)


def test_null_unsupported_parameters_are_ignored(server):
    response = post(server, with_(logit_bias=None, tools=None, seed=-(2**63)))
    assert response.status_code == 200 and response.json()["usage"]["completion_tokens"] == 2


def test_harmless_values_that_clients_send_by_default_are_accepted(server):
    response = post(server, with_(logprobs=False, tools=[], tool_choice="none", response_format={"type": "text"}))
    assert response.status_code == 200, response.text
    assert_error(post(server, with_(logprobs=0)), 400, "logprobs")  # not the same value: false only


def test_lone_surrogates_get_a_400_and_the_connection_stays_usable(server):
    """A lone surrogate used to give a 500 and reset the keep-alive connection (the next request failed too)."""
    raw = b'{"model": "%s", "messages": [{"role": "user", "content": "\\ud800"}], "max_tokens": 2}' % (
        MODEL_NAME.encode()
    )
    ports = set()
    with httpx.Client(base_url=server.url, headers={**AUTH, "Content-Type": "application/json"}) as http:
        for body in (raw, raw.replace(b"content", b"\\udc00"), json.dumps(GOOD).encode()):
            response = http.post("/v1/chat/completions", content=body)
            ports.add(response.extensions["network_stream"].get_extra_info("client_addr")[1])
            assert response.status_code in (200, 400), response.text
            if response.status_code == 400:
                assert response.json()["error"]["code"] in ("invalid_text", "unknown_parameter")
    assert len(ports) == 1  # all three requests on the same connection


def test_non_json_media_type_is_415(server):
    for media in ("text/plain", "application/x-www-form-urlencoded", ""):
        response = httpx.post(
            server.url + "/v1/chat/completions", content=json.dumps(GOOD), headers={**AUTH, "Content-Type": media}
        )
        assert_error(response, 415, code="unsupported_media_type")


def test_openapi_and_docs_need_the_key(server):
    assert_error(httpx.get(server.url + "/openapi.json"), 401)
    assert_error(httpx.get(server.url + "/docs"), 401)
    schema = httpx.get(server.url + "/openapi.json", headers=AUTH)
    assert schema.status_code == 200 and "/v1/chat/completions" in schema.json()["paths"]
    assert httpx.get(server.url + "/docs", headers=AUTH).status_code == 200


def test_api_keys(server):
    assert_error(post(server, GOOD, headers={}), 401, code="invalid_api_key")
    assert_error(post(server, GOOD, headers={"Authorization": "Bearer sk-wrong"}), 401)
    assert_error(post(server, GOOD, headers={"Authorization": "sk-test"}), 401)
    assert post(server, GOOD, headers={"Authorization": "Bearer sk-other"}).status_code == 200
    assert httpx.get(server.url + "/v1/models").status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="nope", max_retries=0).models.list()


def test_prompt_longer_than_context_names_the_token_counts(server):
    long = with_(messages=[{"role": "user", "content": "word " * 3000}])
    error = assert_error(post(server, long), 400, "messages", "context_length_exceeded")
    assert "2048" in error["message"] and "tokens" in error["message"]
    too_many = with_(max_tokens=2040)
    error = assert_error(post(server, too_many), 400, "max_tokens", "context_length_exceeded")
    assert "2040" in error["message"]


def test_request_size_limit_and_unknown_routes(server):
    huge = with_(messages=[{"role": "user", "content": "x" * 300_000}])
    assert_error(post(server, huge), 413)
    assert_error(httpx.get(server.url + "/v1/nothing"), 404)
    assert_error(httpx.get(server.url + "/v1/chat/completions", headers=AUTH), 405)


def test_completions_errors(server):
    path = "/v1/completions"
    assert_error(post(server, {"model": MODEL_NAME, "prompt": ""}, path=path), 400, "prompt")
    assert_error(post(server, {"model": MODEL_NAME, "prompt": [10**9]}, path=path), 400, "prompt")
    assert_error(post(server, {"model": MODEL_NAME, "prompt": "x", "echo": True}, path=path), 400, "echo")


# ------------------------------------------------------------------------------------------ the sweep
@pytest.fixture(scope="module")
def small_server(backend):
    """A second server on the same model with a 48-token context, so fuzzed valid requests finish fast."""
    app = create_app(TransformersBackend(backend.model, backend.tokenizer), model_name=MODEL_NAME, max_context=48)
    with ServerThread(app) as running, httpx.Client(base_url=running.url, timeout=60) as http:
        running.http = http
        yield running


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["<|end_of_turn|>", "<s>", "</s>", "Human: ", "Assistant:", "\ud800", "{{ 7*7 }}", "\x00"]),
)
message = st.fixed_dictionaries(
    {
        "role": st.one_of(st.sampled_from(["system", "user", "assistant", "tool", "", "USER"]), json_values),
        "content": st.one_of(hostile_text, json_values),
    },
    optional={"name": json_values, "extra": json_values},
)
field_values = {
    "model": st.one_of(st.just(MODEL_NAME), json_values),
    "messages": st.one_of(st.lists(message, min_size=0, max_size=3), json_values),
    "temperature": st.one_of(st.floats(-1, 3), json_values),
    "top_p": st.one_of(st.floats(-1, 2), json_values),
    "max_tokens": st.one_of(st.integers(-5, 60), json_values),
    "n": st.one_of(st.integers(-1, 20), json_values),
    "stop": st.one_of(hostile_text, st.lists(hostile_text, max_size=6), json_values),
    "stream": st.one_of(st.booleans(), json_values),
    "seed": st.one_of(st.integers(-(2**65), 2**65), json_values),
    "presence_penalty": st.one_of(st.floats(-3, 3), json_values),
    "frequency_penalty": st.one_of(st.floats(-3, 3), json_values),
    "user": json_values,
    "logit_bias": json_values,
    "tools": json_values,
    "stream_options": st.one_of(st.fixed_dictionaries({"include_usage": st.booleans()}), json_values),
}
one_field_off = st.sampled_from(sorted(field_values)).flatmap(
    lambda key: field_values[key].map(lambda value: json.dumps({**GOOD, key: value}).encode())
)
requests = st.one_of(
    one_field_off,
    st.fixed_dictionaries({}, optional=field_values).map(lambda d: json.dumps(d).encode()),
    st.dictionaries(st.text(max_size=10), json_values, max_size=5).map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
)


SWEEP: dict[int, int] = {}


# Valid requests in every run: how many the generated ones include varies from run to run (4-14 of 300 seen).
VALID = [
    {**GOOD},
    {**GOOD, "stream": True},
    {**GOOD, "stream": True, "stream_options": {"include_usage": True}, "stop": ["x"]},
    {**GOOD, "n": 2, "seed": 3, "temperature": 0.7},
    {**GOOD, "presence_penalty": 1.0, "stop": "e"},
]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(body=requests, path=st.sampled_from(["/v1/chat/completions", "/v1/completions"]))
@example(body=json.dumps(VALID[0]).encode(), path="/v1/chat/completions")
@example(body=json.dumps(VALID[1]).encode(), path="/v1/chat/completions")
@example(body=json.dumps(VALID[2]).encode(), path="/v1/chat/completions")
@example(body=json.dumps(VALID[3]).encode(), path="/v1/chat/completions")
@example(body=json.dumps(VALID[4]).encode(), path="/v1/chat/completions")
def test_bad_input_sweep(small_server, body, path):
    response = small_server.http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    SWEEP[response.status_code] = SWEEP.get(response.status_code, 0) + 1
    if response.status_code != 200:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and "Traceback" not in error["message"]
    elif response.headers["content-type"].startswith("text/event-stream"):
        assert response.text.rstrip().endswith("data: [DONE]") and '"error"' not in response.text
    else:
        assert response.json()["usage"]["total_tokens"] <= 48


def test_server_still_answers_after_the_sweep(small_server):
    assert sum(SWEEP.values()) >= 300 and SWEEP.get(200, 0) >= 5 and SWEEP.get(400, 0) >= 100, SWEEP
    client = openai.OpenAI(base_url=small_server.url + "/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model=MODEL_NAME, messages=[{"role": "user", "content": "Hi"}], max_tokens=5, temperature=0
    )
    assert reply.usage.completion_tokens == 5 and reply.choices[0].finish_reason == "length"
    assert httpx.get(small_server.url + "/health").status_code == 200
