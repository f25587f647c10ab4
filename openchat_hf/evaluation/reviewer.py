"""The judge-call engine shared by pairwise judging and single-answer grading: bounded, cached, parse-retried."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openchat_hf.evaluation.cache import JudgeCache, request_key
from openchat_hf.evaluation.client import EndpointConfig, chat
from openchat_hf.evaluation.parsing import ScoreParseError

logger = logging.getLogger(__name__)


@dataclass
class Review:
    """One judged unit after its attempts: the parsed value, or ``error`` with the last raw text."""

    text: str
    value: Any = None
    error: str | None = None
    attempts: int = 1


@dataclass
class ReviewStats:
    calls: int = 0
    cache_hits: int = 0
    parse_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Reviewer:
    """Sends judge requests through ``client`` with at most ``concurrency`` in flight.

    Every request (messages, model, sampling settings, sample index and attempt number) is hashed; a cached response
    is reused without a call. An unparseable response is retried as attempt 1, 2, ... (a new cache key, so a sampling
    judge gets a fresh try) up to ``parse_retries`` times, then recorded as a failure with its raw text.
    """

    client: Any
    endpoint: EndpointConfig
    cache: JudgeCache
    temperature: float = 0.0
    max_tokens: int = 1024
    parse_retries: int = 2
    concurrency: int = 8
    stats: ReviewStats = field(default_factory=ReviewStats)

    def __post_init__(self):
        self._semaphore = asyncio.Semaphore(self.concurrency)

    def request(self, messages: list[dict], sample: int, attempt: int) -> dict:
        return {
            "model": self.endpoint.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "sample": sample,
            "attempt": attempt,
        }

    def is_cached(self, messages: list[dict], sample: int) -> bool:
        return request_key(self.request(messages, sample, 0)) in self.cache

    async def review(self, messages: list[dict], parse: Callable[[str], Any], sample: int = 0) -> Review:
        """Judge ``messages``; raises ``EndpointError`` if the endpoint keeps failing (nothing is cached then)."""
        error, text = None, ""
        for attempt in range(self.parse_retries + 1):
            request = self.request(messages, sample, attempt)
            key = request_key(request)
            hit = self.cache.get(key)
            if hit is not None:
                self.stats.cache_hits += 1
                text = hit["text"]
            else:
                async with self._semaphore:
                    text, usage = await chat(
                        self.client,
                        self.endpoint.model,
                        messages,
                        temperature=self.temperature,
                        max_tokens=self.max_tokens,
                    )
                self.stats.calls += 1
                self.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                self.stats.completion_tokens += int(usage.get("completion_tokens") or 0)
                self.cache.put(key, request, text, usage)
            try:
                return Review(text=text, value=parse(text), attempts=attempt + 1)
            except ScoreParseError as err:
                self.stats.parse_failures += 1
                error = str(err)
                logger.debug("unparseable review (attempt %d): %s", attempt + 1, err)
        return Review(
            text=text,
            error=f"unparseable after {self.parse_retries + 1} attempts: {error}",
            attempts=self.parse_retries + 1,
        )
