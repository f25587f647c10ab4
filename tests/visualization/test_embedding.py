"""Embedding: the bundled local model (offline), an OpenAI-compatible endpoint on loopback, windows and the cache."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from openchat_hf.visualization import EmbeddingConfig, VisualizationError, embed_texts
from openchat_hf.visualization.embedding import LocalBackend


class CountingLocal(LocalBackend):
    """The real bundled model, counting what it embeds."""

    def __init__(self):
        super().__init__()
        self.embedded: list[str] = []

    def embed(self, texts):
        self.embedded.extend(texts)
        return super().embed(texts)


@pytest.fixture(scope="module")
def local():
    return CountingLocal()


def _cos(a, b):
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


def test_bundled_model_loads_offline_and_embeds_meaningfully(local, tmp_path):
    texts = ["How do I sort a list in Python?", "Sorting Python lists", "A recipe for banana bread"]
    result = embed_texts(texts, EmbeddingConfig(cache_dir=None), backend=local)
    e = result.embeddings
    assert e.shape == (3, 384)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert _cos(e[0], e[1]) > _cos(e[0], e[2]) + 0.3
    assert local.id == "local:all-MiniLM-L6-v2:254"


def test_cache_makes_reruns_cheap(local, tmp_path):
    config = EmbeddingConfig(cache_dir=tmp_path / "cache", batch_size=2)
    texts = [f"conversation number {i} about topic {i * 7}" for i in range(5)]
    local.embedded.clear()
    first = embed_texts(texts, config, backend=local)
    assert (first.num_computed, first.num_cached) == (5, 0)
    assert sorted(local.embedded) == sorted(texts)

    local.embedded.clear()
    again = embed_texts(texts + ["a brand new text"], config, backend=local)
    assert local.embedded == ["a brand new text"]
    assert (again.num_computed, again.num_cached) == (1, 5)
    assert np.array_equal(again.embeddings[:5], first.embeddings)
    assert (tmp_path / "cache" / "embeddings.sqlite").is_file()


def test_long_texts_are_chunked_or_truncated_explicitly(local):
    long_text = " ".join(f"word{i}" for i in range(400)) + " The end is about astronomy and telescopes."
    windows = local.windows(long_text)
    assert len(windows) > 1
    assert sum(n for _, n in windows) == len(local.tokenizer(long_text, add_special_tokens=False)["input_ids"])
    assert all(n <= local.max_tokens for _, n in windows)
    assert windows[-1][0].endswith("telescopes.")

    chunked = embed_texts([long_text, "short"], EmbeddingConfig(cache_dir=None), backend=local)
    truncated = embed_texts([long_text, "short"], EmbeddingConfig(cache_dir=None, long_text="truncate"), backend=local)
    parts = local.model.encode([w for w, _ in windows])
    weights = np.array([n for _, n in windows], dtype=np.float64)
    mean = (parts * weights[:, None]).sum(0) / weights.sum()
    assert np.allclose(chunked.embeddings[0], mean / np.linalg.norm(mean), atol=1e-5)
    first = parts[0] / np.linalg.norm(parts[0])
    assert np.allclose(truncated.embeddings[0], first, atol=1e-5)
    assert not np.allclose(chunked.embeddings[0], truncated.embeddings[0], atol=1e-3)
    assert np.allclose(chunked.embeddings[1], truncated.embeddings[1])
    assert chunked.num_long == truncated.num_long == 1
    assert "1 conversation(s) longer than that were split into consecutive windows" in chunked.description
    assert "truncated to their first window" in truncated.description


def test_config_is_checked():
    with pytest.raises(VisualizationError, match="Unknown embeddings backend"):
        EmbeddingConfig(backend="cohere")
    with pytest.raises(VisualizationError, match="long_text must be one of chunk, truncate"):
        EmbeddingConfig(long_text="drop")
    with pytest.raises(VisualizationError, match="--embeddings-model"):
        LocalBackend("/no/such/model/folder")


class _EmbeddingsHandler(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/embeddings endpoint: vectors are a hash of the input (the OpenAI boundary)."""

    requests: list[dict] = []

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.headers.get("Authorization") != "Bearer sk-test":
            return self._send(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
        data = [
            {"object": "embedding", "index": i, "embedding": list(hashlib.sha256(t.encode()).digest()[:8])}
            for i, t in reversed(list(enumerate(body["input"])))  # out of order on purpose
        ]
        return self._send(200, {"object": "list", "data": data, "model": body["model"], "usage": {}})

    def _send(self, status, payload):
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def embeddings_server():
    _EmbeddingsHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def _expected(text):
    v = np.array(list(hashlib.sha256(text.encode()).digest()[:8]), dtype=np.float64)
    return v / np.linalg.norm(v)


def test_openai_backend_batches_chunks_and_uses_the_key(embeddings_server, monkeypatch, tmp_path):
    monkeypatch.setenv("MY_EMB_KEY", "sk-test")
    config = EmbeddingConfig(
        backend="openai", model="emb-small", base_url=embeddings_server, api_key_env="MY_EMB_KEY",
        max_chars=10, batch_size=2, cache_dir=tmp_path / "cache",
    )  # fmt: skip
    texts = ["short one", "0123456789abcde", "third"]
    result = embed_texts(texts, config)
    inputs = [r["body"]["input"] for r in _EmbeddingsHandler.requests]
    assert sorted(x for batch in inputs for x in batch) == sorted(["short one", "0123456789", "abcde", "third"])
    assert [len(batch) for batch in inputs] == [2, 2]
    assert {r["body"]["model"] for r in _EmbeddingsHandler.requests} == {"emb-small"}
    assert {r["path"] for r in _EmbeddingsHandler.requests} == {"/v1/embeddings"}
    assert np.allclose(result.embeddings[0], _expected("short one"))
    long = 10 * _expected("0123456789") + 5 * _expected("abcde")  # windows weighted by their length
    assert np.allclose(result.embeddings[1], long / np.linalg.norm(long))

    _EmbeddingsHandler.requests = []
    cached = embed_texts(texts, config)
    assert _EmbeddingsHandler.requests == []  # all from the cache
    assert np.array_equal(cached.embeddings, result.embeddings)


def test_openai_backend_errors_are_clear(embeddings_server, monkeypatch):
    monkeypatch.setenv("MY_EMB_KEY", "wrong")
    config = EmbeddingConfig(backend="openai", base_url=embeddings_server, api_key_env="MY_EMB_KEY", cache_dir=None)
    with pytest.raises(VisualizationError, match="embeddings endpoint .* failed .* Check --embeddings-base-url"):
        embed_texts(["x"], config)
