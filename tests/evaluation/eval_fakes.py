"""A small OpenAI-compatible chat server on 127.0.0.1 (real HTTP) that plays a model under test or a judge.

Judge behaviour: the quality of an answer is read from markers in it (``GOOD`` 8, ``BAD`` 4, otherwise 6) and the
judge has a position bias (+1 to Assistant 1), so balanced position calibration is visible in the results. Reviews
rotate through the formats real judges produce. Markers in an answer script trouble: ``MALFORMED_ONCE`` (first
review unparseable), ``ALWAYS_MALFORMED``, ``MALFORMED_WHEN_FIRST`` (unparseable whenever that answer is shown
first), ``RATE_LIMIT`` (two 429s first), ``SERVER_ERROR`` (one 500 first), ``SLOW`` (first reply too late).
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

    def reply(self, body: dict) -> tuple[int, str | None, dict]:
        """(status, content, headers) for one chat request."""
        messages = body["messages"]
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
        if "[[rating]]" in prompt or "Rating: [[" in prompt:
            return 200, self.grade(prompt, nth), {}
        a1 = re.search(ANSWER_RE.format(n=1), prompt, re.S).group(1)
        a2 = re.search(ANSWER_RE.format(n=2), prompt, re.S).group(1)
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
        status, content, headers = self.fake.reply(body)
        with self.fake._lock:
            self.fake.statuses[status] += 1
        if status != 200:
            self._send(status, {"error": {"message": f"fake error {status}", "type": "server_error"}}, headers)
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
