"""The judge-call engine shared by pairwise judging and single-answer grading: bounded, cached, parse-retried, and
asking for a JSON verdict (``response_format``) where the endpoint accepts it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openchat_hf.evaluation.cache import JudgeCache, request_key
from openchat_hf.evaluation.client import EndpointConfig, EndpointError, chat
from openchat_hf.evaluation.parsing import ScoreParseError

logger = logging.getLogger(__name__)

JSON_MODES = ("auto", "json_schema", "json_object", "off")
PROBE_MESSAGES = [{"role": "user", "content": 'Reply with this JSON object and nothing else: {"ok": true}'}]
PROBE_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


@dataclass
class Task:
    """One judged unit: the text-path prompt and parser, and optionally the JSON path (prompt, schema, reader)."""

    messages: list[dict]
    parse: Callable[[str], Any]
    json_messages: list[dict] | None = None
    json_schema: dict | None = None
    json_name: str = "verdict"
    read_json: Callable[[dict], Any] | None = None


@dataclass
class Review:
    """One judged unit after its attempts: the parsed value, or ``error`` with the last raw text.

    ``verdict_source`` says which path produced the verdict: ``json`` (a ``response_format`` reply read as JSON) or
    ``text`` (the reply's text parsed).
    """

    text: str
    value: Any = None
    error: str | None = None
    attempts: int = 1
    verdict_source: str = "text"


@dataclass
class ReviewStats:
    calls: int = 0
    cache_hits: int = 0
    parse_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def response_format(mode: str, name: str, schema: dict) -> dict:
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
    return {"type": "json_object"}


@dataclass
class Reviewer:
    """Sends judge requests through ``client`` with at most ``concurrency`` in flight.

    Every request (messages, model, sampling settings, response format, sample index and attempt number) is hashed;
    a cached response is reused without a call. An unparseable response is retried as attempt 1, 2, ... (a new cache
    key, so a sampling judge gets a fresh try) up to ``parse_retries`` times, then recorded as a failure with its raw
    text. ``json_mode``: ``auto`` probes the endpoint once (the answer is cached with the calls) for
    ``json_schema``, then ``json_object``; ``off`` always parses text.
    """

    client: Any
    endpoint: EndpointConfig
    cache: JudgeCache
    temperature: float = 0.0
    max_tokens: int = 1024
    parse_retries: int = 2
    concurrency: int = 8
    json_mode: str = "off"
    stats: ReviewStats = field(default_factory=ReviewStats)

    def __post_init__(self):
        self._semaphore = asyncio.Semaphore(self.concurrency)

    @classmethod
    def from_settings(
        cls, client: Any, endpoint: EndpointConfig, cache: JudgeCache, settings: dict, concurrency: int
    ) -> Reviewer:
        """A reviewer with the sampling settings a judge / grade run records in its ``meta.json``."""
        return cls(
            client,
            endpoint,
            cache,
            settings["temperature"],
            settings["max_tokens"],
            settings["parse_retries"],
            concurrency,
            json_mode=settings["json_mode"],
        )

    def probe_key(self) -> str:
        return "probe:" + request_key({"base_url": self.endpoint.base_url, "model": self.endpoint.model})

    def cached_json_mode(self) -> str | None:
        """The probed mode if the cache holds it (``auto`` only), else the fixed mode, else ``None``."""
        if self.json_mode != "auto":
            return self.json_mode
        hit = self.cache.get(self.probe_key())
        return hit["text"] if hit else None

    async def resolve_json_mode(self) -> str:
        """``auto`` -> the first of json_schema / json_object the endpoint accepts (probed once), else ``off``."""
        mode = self.cached_json_mode()
        if mode is not None:
            self.json_mode = mode
            return mode
        mode = "off"
        for candidate in ("json_schema", "json_object"):
            try:
                text, _ = await chat(
                    self.client,
                    self.endpoint.model,
                    PROBE_MESSAGES,
                    malformed_retries=0,
                    temperature=0.0,
                    max_tokens=16,
                    response_format=response_format(candidate, "probe", PROBE_SCHEMA),
                )
            except EndpointError as err:
                if err.retryable:
                    raise
                logger.info("%s does not accept response_format %s: %s", self.endpoint.model, candidate, err)
                continue
            try:
                if isinstance(json.loads(text), dict):
                    mode = candidate
                    break
            except ValueError:
                logger.info("%s ignored response_format %s (reply not JSON)", self.endpoint.model, candidate)
        self.cache.put(self.probe_key(), {"probe": "response_format"}, mode, {})
        logger.info("judge %s: verdicts as %s", self.endpoint.model, "text" if mode == "off" else mode)
        self.json_mode = mode
        return mode

    def request(self, task: Task, sample: int, attempt: int) -> dict:
        mode = self.cached_json_mode() or "off"
        use_json = mode != "off" and task.json_messages is not None
        request = {
            "model": self.endpoint.model,
            "messages": task.json_messages if use_json else task.messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "sample": sample,
            "attempt": attempt,
        }
        if use_json:
            request["response_format"] = response_format(mode, task.json_name, task.json_schema)
        return request

    def is_cached(self, task: Task, sample: int) -> bool:
        return request_key(self.request(task, sample, 0)) in self.cache

    def _read(self, task: Task, request: dict, text: str) -> tuple[Any, str]:
        if "response_format" in request:
            try:
                obj = json.loads(text)
                return task.read_json(obj), "json"
            except (ValueError, TypeError, KeyError, AttributeError):
                logger.debug("JSON verdict not readable, parsing its text")
        return task.parse(text), "text"

    async def review(self, task: Task, sample: int = 0) -> Review:
        """Judge ``task``; raises ``EndpointError`` if the endpoint keeps failing (nothing is cached then)."""
        error, text = None, ""
        for attempt in range(self.parse_retries + 1):
            request = self.request(task, sample, attempt)
            key = request_key(request)
            hit = self.cache.get(key)
            if hit is not None:
                self.stats.cache_hits += 1
                text = hit["text"]
            else:
                params = {k: request[k] for k in ("temperature", "max_tokens")}
                if "response_format" in request:
                    params["response_format"] = request["response_format"]
                async with self._semaphore:
                    text, usage = await chat(
                        self.client,
                        self.endpoint.model,
                        request["messages"],
                        malformed_retries=self.endpoint.malformed_retries,
                        retry_delay=self.endpoint.retry_delay,
                        **params,
                    )
                self.stats.calls += 1
                self.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                self.stats.completion_tokens += int(usage.get("completion_tokens") or 0)
                self.cache.put(key, request, text, usage)
            try:
                value, source = self._read(task, request, text)
                return Review(text=text, value=value, attempts=attempt + 1, verdict_source=source)
            except ScoreParseError as err:
                self.stats.parse_failures += 1
                error = str(err)
                logger.debug("unparseable review (attempt %d): %s", attempt + 1, err)
        return Review(
            text=text,
            error=f"unparseable after {self.parse_retries + 1} attempts: {error}",
            attempts=self.parse_retries + 1,
        )
