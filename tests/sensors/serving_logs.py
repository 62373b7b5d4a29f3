"""Prediction logs written with the real PredictionLog, row by row as the server writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlsecops_provider.core.serving.prediction_log import PredictionLog


def write_log(
    folder: Path,
    requests: int,
    *,
    shadow_status: str = "ok",
    latency_ms: float = 5.0,
    prediction: Any = lambda i: str(i % 2),
    fallback: str = "",
    out_of_profile: bool = False,
    start: int = 0,
) -> str:
    log = PredictionLog(folder.as_uri(), batch_rows=50)
    rows = []
    for i in range(start, start + requests):
        value = prediction(i)
        rows.append({
            "request_id": f"r{i}", "row": 0, "time": f"2026-12-01T00:00:{i % 60:02d}",
            "inputs_sha256": "a" * 64, "champion_version": "2", "served_version": "2",
            "served_prediction": value, "champion_prediction": value,
            "champion_latency_ms": latency_ms, "champion_error": "", "fallback": fallback,
            "out_of_profile": out_of_profile, "shadow_version": "3",
            "shadow_prediction": value, "shadow_latency_ms": latency_ms,
            "shadow_status": shadow_status, "champion_sha256": "c" * 64, "shadow_sha256": "d" * 64,
        })  # fmt: skip
    log.append(rows)
    log.flush()
    return folder.as_uri()
