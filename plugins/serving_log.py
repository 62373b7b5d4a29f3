"""Agreement and latency over time from a shadow-serving prediction log, for the run page.

A ``shadow_warmup`` report names the prediction log it read (subject ``log``). The page reads
that log back with :func:`mlsecops_provider.core.serving.prediction_log.read_prediction_log`
(chain and every batch digest verified) — only when the log is inside the evidence store —
and cuts the rows of the report's shadow version into at most :data:`BUCKETS` windows of
equal row count: per window the share of rows where champion and shadow predicted the same,
and the median champion and shadow latency. A log that cannot be read or verified gives no
picture (the gate's verdict says why). Results are cached per log for a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from mlsecops_provider.core.errors import MLSecOpsError

log = logging.getLogger(__name__)
BUCKETS = 12
CACHE_SECONDS = 60.0
_cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}
_lock = threading.Lock()
Windows = Callable[[str, str | None], list[dict[str, Any]]]


def windows(frame: Any, shadow_version: str | None = None) -> list[dict[str, Any]]:
    """``[{time, agreement, latency_ms, shadow_latency_ms, rows}]`` in log order."""
    if "shadow_status" not in frame or frame.empty:
        return []
    scored = frame[(frame["shadow_status"] == "ok") & frame["champion_prediction"].notna()]
    if shadow_version is not None and "shadow_version" in scored:
        scored = scored[scored["shadow_version"].astype(str) == str(shadow_version)]
    if scored.empty:
        return []
    size = max(1, -(-len(scored) // BUCKETS))
    out = []
    for start in range(0, len(scored), size):
        part = scored.iloc[start : start + size]
        same = part["champion_prediction"].astype(str) == part["shadow_prediction"].astype(str)
        out.append(
            {
                "time": str(part["time"].iloc[0]),
                "rows": len(part),
                "agreement": float(same.mean()),
                "latency_ms": _median(part, "champion_latency_ms"),
                "shadow_latency_ms": _median(part, "shadow_latency_ms"),
            }
        )
    return out


def _median(part: Any, column: str) -> float | None:
    if column not in part:
        return None
    values = part[column].dropna()
    return float(values.median()) if len(values) else None


def reader(store_root: str, s3: Any = None) -> Windows:
    """A ``(log uri, shadow version) -> windows`` function limited to the evidence store."""

    def read(uri: str, shadow_version: str | None) -> list[dict[str, Any]]:
        from mlsecops_provider.core.serving.prediction_log import read_prediction_log
        from mlsecops_provider.plugins.gate_evidence import evidence_dag_segment

        uri = uri.rstrip("/")
        try:
            evidence_dag_segment(store_root, uri)
        except ValueError:
            log.warning("prediction log %s: outside the evidence store, not read", uri)
            return []
        key = f"{uri}#{shadow_version}"
        with _lock:
            hit = _cache.get(key)
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        try:
            found = windows(read_prediction_log(uri, s3), shadow_version)
        except (MLSecOpsError, KeyError, ValueError) as err:
            log.warning("prediction log %s: %s", uri, err)
            found = []
        with _lock:
            _cache[key] = (time.monotonic(), found)
        return found

    return read
