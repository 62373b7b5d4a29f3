"""ServingAnomalySensor over a real prediction log: quiet traffic does not fire; latency
spikes, fallback and profile-violation rates and prediction drift do, with the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlsecops_provider.core.serving.anomaly import AnomalyConfig
from mlsecops_provider.sensors.serving_anomaly import SERVING_ALERT, ServingAnomalySensor
from tests.sensors.serving_logs import write_log

CONFIG = AnomalyConfig(window_requests=50, min_requests=20)


class Outlet:
    extra: dict[str, Any] = {}


def poke(log: str) -> tuple[Any, dict[Any, Outlet]]:
    events: dict[Any, Outlet] = {SERVING_ALERT: Outlet()}
    sensor = ServingAnomalySensor(task_id="anomaly", log_uri=log, config=CONFIG)
    assert SERVING_ALERT in sensor.outlets
    return sensor.poke({"outlet_events": events}), events


def test_quiet_traffic_does_not_fire(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log", 100)
    result, _ = poke(log)
    assert not result.is_done


def test_latency_spike_fires_with_the_reason(tmp_path: Path) -> None:
    write_log(tmp_path / "log", 60, latency_ms=5.0)
    log = write_log(tmp_path / "log", 50, latency_ms=40.0, start=60)
    result, events = poke(log)
    assert result.is_done
    assert any("latency spike" in r for r in result.xcom_value["reasons"])
    assert events[SERVING_ALERT].extra["reason"] == "serving_anomaly"


def test_fallback_and_profile_violation_rates_fire(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log", 50, fallback="error", out_of_profile=True)
    result, _ = poke(log)
    reasons = " ".join(result.xcom_value["reasons"])
    assert "fallback_rate" in reasons and "out_of_profile_rate" in reasons


def test_prediction_drift_fires(tmp_path: Path) -> None:
    write_log(tmp_path / "log", 60, prediction=lambda i: str(i % 2))
    log = write_log(tmp_path / "log", 50, prediction=lambda i: "1", start=60)
    result, _ = poke(log)
    assert any("prediction drift" in r for r in result.xcom_value["reasons"])
