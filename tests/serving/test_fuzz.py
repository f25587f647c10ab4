"""A seeded hypothesis fuzzer against the embedded server on one keep-alive connection.

Wrong types, huge numbers, deep nesting, lone surrogates, header abuse, wrong methods and paths, and valid
requests (streamed or not) mixed in: no answer may be a 5xx, every error has OpenAI's shape, every stream ends with
``[DONE]``, and the connection is never dropped (the client's local port stays the same). 1,000 requests here and
1,000 more in the slow variant (plus the 300 of ``test_errors.py``).
"""

from __future__ import annotations

import json
import os

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_helpers import MODEL_NAME, ServerThread

from openchat_hf.serving import create_app
from openchat_hf.serving.backends.transformers import TransformersBackend

KEY = "sk-fuzz"
GOOD = {"model": MODEL_NAME, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}
ROUTES = ["/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "/openapi.json", "/docs"]


class Tally:
    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.ports: set[int] = set()
        self.requests = 0


@pytest.fixture(scope="module")
def fuzz_server(backend):
    """A server with a 32-token context (valid requests finish fast), a key, and a small batch cap."""
    app = create_app(
        TransformersBackend(backend.model, backend.tokenizer, max_batch_size=4),
        model_name=MODEL_NAME,
        max_context=32,
        api_keys=(KEY,),
        max_request_bytes=100_000,
    )
    with ServerThread(app) as running, httpx.Client(base_url=running.url, timeout=60) as http:
        running.http, running.tally = http, Tally()
        yield running


surrogates = st.sampled_from(["\ud800", "\udfff", "a\udc80b", "\ud83d"])
hostile_text = st.one_of(
    st.text(max_size=30),
    surrogates,
    st.sampled_from(["<|end_of_turn|>", "<s>", "</s>", "GPT4 Assistant:", "{{ 7*7 }}", "\x00", "\u202e", "💥" * 5]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=10,
)
message = st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(["system", "user", "assistant", "tool", "USER"]), values)},
    optional={"content": st.one_of(hostile_text, values), "name": values},
)
fields = {
    "model": st.one_of(st.just(MODEL_NAME), hostile_text, values),
    "messages": st.one_of(st.lists(message, min_size=1, max_size=3), values),
    "prompt": st.one_of(hostile_text, st.lists(st.integers(-5, 5000), max_size=5), values),
    "temperature": st.one_of(st.floats(0, 2), st.sampled_from([1e-39, 1e-45, 5e-324, 0.009]), values),
    "top_p": st.one_of(st.floats(0, 1), values),
    "max_tokens": st.one_of(st.integers(1, 8), st.integers(-(2**70), 2**70), values),
    "n": st.one_of(st.integers(1, 3), values),
    "stop": st.one_of(hostile_text, st.lists(hostile_text, max_size=5), st.text(min_size=990, max_size=1010), values),
    "stream": st.one_of(st.booleans(), values),
    "stream_options": st.one_of(st.fixed_dictionaries({"include_usage": st.booleans()}), values),
    "seed": st.one_of(st.integers(-(2**64), 2**65), values),
    "presence_penalty": st.one_of(st.floats(-2, 2), values),
    "frequency_penalty": st.one_of(st.floats(-2, 2), values),
    "response_format": st.one_of(
        st.sampled_from([{"type": "json_object"}, {"type": "text"}, {"type": "json_schema"}]),
        st.fixed_dictionaries(
            {"type": st.just("json_schema"), "json_schema": st.fixed_dictionaries({"schema": values})}
        ),
        values,
    ),
    "user": values,
    "logprobs": values,
    "tools": values,
    "tool_choice": values,
}
bodies = st.one_of(
    st.sampled_from(sorted(fields)).flatmap(lambda k: fields[k].map(lambda v: json.dumps({**GOOD, k: v}))),
    st.fixed_dictionaries({}, optional=fields).map(json.dumps),
    st.fixed_dictionaries(
        {"model": st.just(MODEL_NAME)}, optional={k: v for k, v in fields.items() if k != "model"}
    ).map(json.dumps),
    st.integers(1, 3000).map(lambda d: json.dumps({**GOOD, "user": "X"}).replace('"X"', "[" * d + "]" * d)),
    st.sampled_from(["1e400", "-1e400", "9" * 5000, "NaN", "Infinity"]).map(
        lambda number: json.dumps({**GOOD, "temperature": 0}).replace('"temperature": 0', f'"temperature": {number}')
    ),
    values.map(json.dumps),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(str.strip)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Authorization": st.one_of(st.just(f"Bearer {KEY}"), st.just("Bearer " + KEY + "x"), header_values),
        "Content-Type": st.one_of(
            st.sampled_from(["application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded"]),
            header_values,
        ),
        "Accept": header_values,
        "X-Request-Id": header_values,
        "Origin": header_values,
        "Host": st.one_of(st.just("127.0.0.1"), header_values.filter(lambda h: h.strip() and " " not in h)),
        "User-Agent": header_values,
    },
)
methods = st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
paths = st.one_of(
    st.sampled_from(ROUTES * 3),
    st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="?#%"), max_size=30).map(
        lambda p: "/" + p
    ),
    st.sampled_from(
        ["/v1/chat/completions/", "//v1/models", "/v1/../v1/models", "/V1/MODELS", "/v1/%00", "/v1/" + "a" * 3000]
    ),
)
some_headers = st.one_of(st.just({}), st.just({}), headers)
to_the_api = st.tuples(st.just("POST"), st.sampled_from(ROUTES[:2]), some_headers, bodies)
requests = st.one_of(to_the_api, to_the_api, to_the_api, st.tuples(methods, paths, headers, bodies))


def check(server, method, path, extra_headers, body) -> None:
    hdrs = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json", **extra_headers}
    content = body.encode("utf-8", "surrogatepass") if method not in ("GET", "HEAD") else None
    response = server.http.request(method, path, content=content, headers=hdrs)
    tally = server.tally
    tally.requests += 1
    tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
    assert response.status_code < 500, (method, path, body[:200], response.text[:300])
    stream = response.extensions["network_stream"]
    if response.headers.get("connection", "").lower() != "close":
        tally.ports.add(stream.get_extra_info("client_addr")[1])
    if method == "HEAD" or response.status_code in (204, 304):
        return
    kind = response.headers.get("content-type", "")
    if response.status_code >= 400:
        assert kind.startswith("application/json"), (response.status_code, response.text[:200])
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and "Traceback" not in error["message"]
    elif kind.startswith("text/event-stream"):
        lines = [line for line in response.text.splitlines() if line]
        assert lines[-1] == "data: [DONE]"
        assert all('"server_error"' not in line for line in lines), lines[-2]


def run_fuzz(server, method, path, extra_headers, body):
    check(server, method, path, extra_headers, body)


FAST = settings(
    max_examples=int(os.environ.get("FUZZ_N", 1000)),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
SLOW = settings(
    max_examples=int(os.environ.get("FUZZ_N", 1000)),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@FAST
@given(request=requests)
def test_fuzz(fuzz_server, request):
    run_fuzz(fuzz_server, *request)


@pytest.mark.slow
@SLOW
@given(request=st.tuples(st.just("POST"), st.sampled_from(ROUTES[:2]), headers, bodies))
def test_fuzz_more_bodies(fuzz_server, request):
    run_fuzz(fuzz_server, *request)


def test_after_the_fuzz_the_connection_held_and_the_server_answers(fuzz_server):
    tally = fuzz_server.tally
    n = int(os.environ.get("FUZZ_N", 1000))
    assert tally.requests >= n, tally.requests
    assert len(tally.ports) == 1, "a connection was dropped during the fuzz"
    assert tally.statuses.get(200, 0) >= n // 50 and tally.statuses.get(400, 0) >= n // 5, tally.statuses
    reply = fuzz_server.http.post(
        "/v1/chat/completions", json={**GOOD, "temperature": 0}, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 3
    metrics = fuzz_server.http.get("/metrics").text
    assert 'openchat_hf_request_errors_total{code="internal_error"' not in metrics
