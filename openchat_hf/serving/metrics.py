"""``GET /metrics``: Prometheus text format (``prometheus_client``), one registry per app, names like vLLM's / TGI's."""

from __future__ import annotations

from typing import Any

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0)
TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """The server's counters, gauges and histograms.

    ``openchat_hf_requests_running`` / ``_waiting`` (sequences holding / waiting for a place in the batch),
    ``openchat_hf_batch_size`` (sequences per decoding step of the embedded backend) and ``_batch_size_max``,
    ``openchat_hf_prompt_tokens_total``, ``openchat_hf_generation_tokens_total``,
    ``openchat_hf_time_to_first_token_seconds``, ``openchat_hf_inter_token_latency_seconds`` (streamed sequences),
    ``openchat_hf_request_duration_seconds``, ``openchat_hf_request_success_total{finish_reason}`` and
    ``openchat_hf_request_errors_total{status,code}``.
    """

    def __init__(self, admission: Any, backend: Any) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry = CollectorRegistry()
        running = Gauge("openchat_hf_requests_running", "Sequences generating now.", registry=registry)
        running.set_function(lambda: admission.running)
        waiting = Gauge("openchat_hf_requests_waiting", "Sequences waiting for a place.", registry=registry)
        waiting.set_function(lambda: admission.waiting)
        biggest = Gauge("openchat_hf_batch_size_max", "Largest decoding batch so far.", registry=registry)
        biggest.set_function(lambda: backend.stats().get("max_batch", 0))
        self.batch_size = Histogram(
            "openchat_hf_batch_size", "Sequences per decoding step.", buckets=BATCH_BUCKETS, registry=registry
        )
        self.prompt_tokens = Counter("openchat_hf_prompt_tokens", "Prompt tokens processed.", registry=registry)
        self.generation_tokens = Counter("openchat_hf_generation_tokens", "Tokens generated.", registry=registry)
        self.ttft = Histogram(
            "openchat_hf_time_to_first_token_seconds",
            "Time from request to first token (streamed sequences).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.itl = Histogram(
            "openchat_hf_inter_token_latency_seconds",
            "Time between tokens (streamed sequences).",
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "openchat_hf_request_duration_seconds", "Request latency.", buckets=LATENCY_BUCKETS, registry=registry
        )
        self.success = Counter(
            "openchat_hf_request_success", "Finished sequences.", ["finish_reason"], registry=registry
        )
        self.errors = Counter(
            "openchat_hf_request_errors", "Error answers by status and code.", ["status", "code"], registry=registry
        )
        if hasattr(backend, "on_step"):
            backend.on_step = self.batch_size.observe

    def error(self, status: int, code: str | None) -> None:
        self.errors.labels(status=str(status), code=code or "none").inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
