"""Anomalies over the prediction log: latency spikes, error and fallback rates,
profile-violation rate and drift of the served predictions.

The log is split into a *recent* window (the last ``window_requests`` requests) and the
*baseline* before it. Rates are judged on the recent window alone; the latency spike and
the prediction drift compare it with the baseline (no baseline yet: not judged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.serving.prediction_log import read_prediction_log
from mlsecops_provider.core.serving.warmup import psi
from mlsecops_provider.core.storage import S3ClientFactory

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class AnomalyConfig:
    """Thresholds of the anomaly check (the sensor's parameters)."""

    window_requests: int = 200
    min_requests: int = 50
    latency_spike_ratio: float = 3.0
    max_p99_ms: float | None = None
    max_error_rate: float = 0.05
    max_fallback_rate: float = 0.05
    max_out_of_profile_rate: float = 0.05
    max_prediction_psi: float = 0.25
    psi_bins: int = 10

    def __post_init__(self) -> None:
        if self.window_requests < 1 or self.min_requests < 1 or self.psi_bins < 2:
            raise ValueError("window_requests and min_requests must be >= 1, psi_bins >= 2")


def _p99(requests: pd.DataFrame) -> float | None:
    values = requests["champion_latency_ms"].dropna()
    return float(values.quantile(0.99)) if len(values) else None


def find_anomalies(frame: pd.DataFrame, config: AnomalyConfig) -> dict[str, Any]:
    """``{anomalous, reasons, metrics}`` for the log rows in ``frame``."""
    ids = list(dict.fromkeys(frame["request_id"]))
    recent_ids = set(ids[-config.window_requests :])
    recent = frame[frame["request_id"].isin(recent_ids)]
    baseline = frame[~frame["request_id"].isin(recent_ids)]
    requests = recent.drop_duplicates("request_id")
    metrics: dict[str, Any] = {"recent_requests": len(requests), "baseline_requests": 0}
    if len(requests) < config.min_requests:
        return {"anomalous": False, "reasons": [], "metrics": metrics}
    base_requests = baseline.drop_duplicates("request_id")
    metrics.update(
        baseline_requests=len(base_requests),
        error_rate=float((requests["champion_error"].fillna("") != "").mean()),
        fallback_rate=float((requests["fallback"].fillna("") != "").mean()),
        out_of_profile_rate=float(recent["out_of_profile"].fillna(False).astype(bool).mean()),
        p99_ms=_p99(requests),
        baseline_p99_ms=_p99(base_requests),
    )
    reasons = []
    for name, limit in (
        ("error_rate", config.max_error_rate),
        ("fallback_rate", config.max_fallback_rate),
        ("out_of_profile_rate", config.max_out_of_profile_rate),
    ):
        if metrics[name] > limit:
            reasons.append(f"{name} {metrics[name]:.3g} above {limit:g}")
    p99, base = metrics["p99_ms"], metrics["baseline_p99_ms"]
    if p99 is not None and config.max_p99_ms is not None and p99 > config.max_p99_ms:
        reasons.append(f"latency p99 {p99:.1f} ms above {config.max_p99_ms:g} ms")
    enough_baseline = len(base_requests) >= config.min_requests
    if p99 is not None and base and enough_baseline and p99 > config.latency_spike_ratio * base:
        reasons.append(f"latency spike: p99 {p99:.1f} ms vs {base:.1f} ms before")
    if enough_baseline:
        drift = psi(
            list(baseline["served_prediction"]), list(recent["served_prediction"]), config.psi_bins
        )
        metrics["prediction_psi"] = drift
        if drift > config.max_prediction_psi:
            reasons.append(f"prediction drift: PSI {drift:.3g} above {config.max_prediction_psi:g}")
    return {"anomalous": bool(reasons), "reasons": reasons, "metrics": metrics}


def serving_anomalies(
    log_uri: str, config: AnomalyConfig, s3: S3ClientFactory | None = None
) -> dict[str, Any]:
    """:func:`find_anomalies` over the verified prediction log at ``log_uri``."""
    return {"log_uri": log_uri, **find_anomalies(read_prediction_log(log_uri, s3), config)}
