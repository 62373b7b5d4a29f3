"""Prometheus metrics of one server (its own registry, so several apps never collide)."""

from __future__ import annotations

from typing import Any

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServingMetrics:
    """Requests, latencies per model, fallbacks, profile violations, shadow outcomes."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        ns = "mlsecops_serving"
        self.requests = Counter(
            f"{ns}_requests", "Requests by HTTP status", ["status"], registry=self.registry
        )
        self.latency = Histogram(
            f"{ns}_model_latency_seconds",
            "Prediction latency per model",
            ["role", "version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.request_latency = Histogram(
            f"{ns}_request_latency_seconds",
            "End-to-end latency of answered requests",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.fallbacks = Counter(
            f"{ns}_fallbacks", "Answers given by the fallback", ["reason"], registry=self.registry
        )
        self.profile_violations = Counter(
            f"{ns}_profile_violations",
            "Values outside the champion's training profile",
            ["kind"],
            registry=self.registry,
        )
        self.out_of_profile_rows = Counter(
            f"{ns}_out_of_profile_rows", "Rows outside the training profile", registry=self.registry
        )
        self.rejected = Counter(
            f"{ns}_rejected", "Requests refused, by reason", ["reason"], registry=self.registry
        )
        self.shadow = Counter(
            f"{ns}_shadow_requests",
            "Mirrored requests by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.disagreements = Counter(
            f"{ns}_shadow_disagreements",
            "Rows where the shadow's prediction differs from the champion's",
            registry=self.registry,
        )
        self.shadow_queue = Gauge(
            f"{ns}_shadow_queue_depth", "Mirrored requests waiting", registry=self.registry
        )

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def value(self, name: str, **labels: Any) -> float:
        """A sample's current value (0 when never observed), for tests and health."""
        found = self.registry.get_sample_value(name, labels or None)
        return float(found or 0.0)
