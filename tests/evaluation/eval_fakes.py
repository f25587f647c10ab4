"""A small OpenAI-compatible chat server on 127.0.0.1 (real HTTP) that plays a model under test or a judge.

Judge behaviour: the quality of an answer is read from markers in it (``GOOD`` 8, ``BAD`` 4, otherwise 6) and the
judge has a position bias (+1 to Assistant 1), so balanced position calibration is visible in the results. Reviews
rotate through the formats real judges produce. Markers in an answer script trouble: ``MALFORMED_ONCE`` (first
review unparseable), ``ALWAYS_MALFORMED``, ``MALFORMED_WHEN_FIRST`` (unparseable whenever that answer is shown
first), ``RATE_LIMIT`` (two 429s first), ``SERVER_ERROR`` (one 500 first), ``SLOW`` (first reply too late).

Broken 200 bodies: ``server.add_fault(substring, kind, times)`` serves ``kind`` (``bad_json``: a truncated JSON body,
``empty_choices``, ``no_message``, ``html``: a text/html page) to the next ``times`` requests (``None``: all) whose
last message contains ``substring``.

``response_format``: ``reject`` (default: 400, as a server that does not support it), ``json_schema`` (accepts both
kinds), ``json_object`` (accepts only that kind), or ``ignore`` (accepts it and answers text). Accepted JSON requests
get a JSON verdict. The capability probe is kept apart from the judge calls (``server.probes``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

QUALITY = (("GOOD", 8), ("BAD", 4))
ANSWER_RE = r"\[The Start of Assistant {n}'s Answer\]\n(.*?)\n\[The End of Assistant {n}'s Answer\]"


def quality(answer: str) -> int:
    for marker, score in QUALITY:
        if marker in answer:
            return score
    return 6


def review_text(a1: str, a2: str, variant: int) -> str:
    """A realistic review of (Assistant 1, Assistant 2), in one of several score formats."""
    s1, s2 = min(10, quality(a1) + 1), quality(a2)
    evidence = (
        f"Assistant 1 answers the question with {len(a1.split())} words and Assistant 2 with {len(a2.split())}. "
        "Both address the request; I checked the facts and the structure of each answer."
    )
    formats = [
        f"{evidence}\n\nScores: {s1} {s2}",
        f"{s1} {s2}\n{evidence}",
        f"{evidence}\n\nScore of Assistant 1: {s1}\nScore of Assistant 2: {s2}",
        f"{evidence}\n\n[{s1}, {s2}]",
        f"{evidence}\n\nAssistant 1: {s1}/10, Assistant 2: {s2}/10",
    ]
    return formats[variant % len(formats)]


class FakeOpenAI:
    """``with FakeOpenAI(mode="judge") as server: server.base_url``; ``server.requests`` lists what it received."""

    def __init__(self, mode: str = "judge", slow_seconds: float = 2.0, delay: float = 0.0):
        self.mode = mode
        self.slow_seconds = slow_seconds
        self.delay = delay
        self.down = False  # True: every chat request gets a 503
        self.response_format = "reject"
        self.faults: list[list] = []
        self.probes: list[dict] = []
        self.requests: list[dict] = []
        self.seen: Counter = Counter()
        self.statuses: Counter = Counter()
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def chat_calls(self) -> int:
        return len(self.requests)

    def add_fault(self, substring: str, kind: str, times: int | None = 1) -> None:
        self.faults.append([substring, kind, times])

    def fault_for(self, body: dict) -> str | None:
        prompt = body["messages"][-1]["content"]
        with self._lock:
            for fault in self.faults:
                substring, kind, times = fault
                if substring in prompt and (times is None or times > 0):
                    if times is not None:
                        fault[2] -= 1
                    return kind
        return None

    def format_status(self, body: dict) -> tuple[int, str | None]:
        """(400, message) when ``response_format`` is refused; (200, kind or None) otherwise."""
        kind = (body.get("response_format") or {}).get("type")
        if kind is None or kind == "text":
            return 200, None
        if self.response_format == "reject" or (self.response_format == "json_object" and kind != "json_object"):
            return 400, f"response_format {kind} is not supported"
        return 200, None if self.response_format == "ignore" else kind

    def reply(self, body: dict) -> tuple[int, str | None, dict]:
        """(status, content, headers) for one chat request."""
        messages = body["messages"]
        status, json_kind = self.format_status(body)
        if '{"ok": true}' in messages[-1]["content"]:  # the judge's capability probe
            with self._lock:
                self.probes.append(body)
            if status != 200:
                return status, json_kind or "response_format not supported", {}
            return 200, '{"ok": true}' if json_kind else "Sure! Here it is: ok", {}
        if status != 200:
            return status, "response_format not supported", {}
        key = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
        with self._lock:
            self.requests.append(body)
            self.seen[key] += 1
            nth = self.seen[key]
        if self.down:
            return 503, None, {"retry-after-ms": "5"}
        prompt = messages[-1]["content"]
        if self.mode == "model":
            return 200, self.answer(messages), {}
        if "RATE_LIMIT" in prompt and nth <= 2:
            return 429, None, {"retry-after-ms": "5"}
        if "SERVER_ERROR" in prompt and nth == 1:
            return 500, None, {"retry-after-ms": "5"}
        if "SLOW" in prompt and nth == 1:
            time.sleep(self.slow_seconds)
        if "[[rating]]" in prompt or "Rating: [[" in prompt or '"rating"' in prompt:
            text = self.grade(prompt, nth)
            if json_kind:
                rating = float(re.search(r"\[\[(\d+)\]\]", text).group(1)) if "[[" in text else 0
                text = json.dumps({"explanation": text.split("\n")[0], "rating": rating})
            return 200, text, {}
        a1 = re.search(ANSWER_RE.format(n=1), prompt, re.S).group(1)
        a2 = re.search(ANSWER_RE.format(n=2), prompt, re.S).group(1)
        if json_kind and "ALWAYS_MALFORMED" not in prompt:
            s1, s2 = min(10, quality(a1) + 1), quality(a2)
            return 200, json.dumps({"evaluation": "Both answers checked.", "score_1": s1, "score_2": s2}), {}
        if "ALWAYS_MALFORMED" in prompt or ("MALFORMED_ONCE" in prompt and nth == 1):
            return 200, "Both answers are fine, I cannot decide between them.", {}
        if "MALFORMED_WHEN_FIRST" in a1:
            return 200, "Assistant 1 is clearly stronger overall.", {}
        variant = int(key[:8], 16)
        return 200, review_text(a1, a2, variant), {}

    @staticmethod
    def answer(messages: list[dict]) -> str:
        """A model under test: GOOD answers to questions of even length, BAD to odd; turn 2 cites turn 1."""
        question = messages[-1]["content"]
        tag = "GOOD" if len(question) % 2 == 0 else "BAD"
        previous = [m["content"] for m in messages if m["role"] == "assistant"]
        suffix = f" (following up on: {previous[-1][:30]})" if previous else ""
        return f"A {tag} answer to '{question[:40]}'{suffix}."

    @staticmethod
    def grade(prompt: str, nth: int) -> str:
        if "ALWAYS_MALFORMED" in prompt:
            return "This answer is okay."
        last = (
            prompt.rsplit("[The Start of Assistant's Answer]", 1)[-1]
            if "[The Start of Assistant's Answer]" in prompt
            else prompt.rsplit("### Assistant:", 1)[-1]
        )
        last = last.split("[The End of", 1)[0]
        return f"The assistant's answer is reasonable and mostly correct.\n\nRating: [[{quality(last)}]]"


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    def _send_fault(self, kind: str, body: dict) -> None:
        """A 200 whose body is not a usable completion."""
        payload = {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body["model"]}
        if kind == "bad_json":
            data, content_type = b'{"id": "chatcmpl-fake", "choices": [{"index": 0, "message": {"role": "assis', "json"
        elif kind == "html":
            data, content_type = b"<html><body>502 Bad Gateway</body></html>", "text/html"
        else:
            payload["choices"] = [] if kind == "empty_choices" else [{"index": 0, "finish_reason": "stop"}]
            data, content_type = json.dumps(payload).encode(), "json"
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if content_type == "json" else content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/health", "/v1/health"):
            self._send(200, {"status": "ok"})
        elif self.path.startswith("/v1/models"):
            self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "test"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        if not self.path.startswith("/v1/chat/completions"):
            self._send(404, {"error": {"message": "not found"}})
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.fake.delay:
            time.sleep(self.fake.delay)
        fault = self.fake.fault_for(body)
        status, content, headers = self.fake.reply(body)
        with self.fake._lock:
            self.fake.statuses[status] += 1
        if status != 200:
            kind = "invalid_request_error" if status == 400 else "server_error"
            self._send(status, {"error": {"message": content or f"fake error {status}", "type": kind}}, headers)
            return
        if fault is not None:
            self._send_fault(fault, body)
            return
        self._send(
            200,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            },
        )


def messages_key(messages: list[dict]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class ReplayJudge(FakeOpenAI):
    """A judge that answers only prompts it has recorded replies for (``responses[messages_key(messages)]``); any
    other prompt (a prompt that differs by one byte) gets a 400, so a replay also checks the prompts exactly."""

    def __init__(self, responses: dict[str, str]):
        super().__init__("judge")
        self.responses = responses

    def reply(self, body: dict) -> tuple[int, str | None, dict]:
        with self._lock:
            self.requests.append(body)
        if body.get("response_format"):
            return 400, "response_format is not supported", {}
        text = self.responses.get(messages_key(body["messages"]))
        if text is None:
            return 400, "no recorded review for this prompt", {}
        return 200, text, {}
