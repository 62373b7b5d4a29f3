"""The ``shadow_warmup`` gate: shadow against champion on the logged production traffic.

Read from the prediction log (chain and batch digests verified), for one shadow version
(default: the latest in the log): agreement rate of the two predictions per row, PSI of
the shadow's prediction distribution against the champion's, p50/p99 latency ratios
(shadow/champion, per request), the shadow's error rate, the fallback rate of the window
and, where delayed labels arrived (a CSV or Parquet file with ``request_id``, optionally
``row``, and the label column), both models' accuracy. Too few mirrored requests is verdict
``fail`` with the reason ``not enough traffic`` (retry later); a log that cannot be read or
verified is ``error``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.evidence import GateResult, Verdict, utcnow
from mlsecops_provider.core.serving.prediction_log import read_prediction_log
from mlsecops_provider.core.storage import S3ClientFactory

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
GATE = "shadow_warmup"
NOT_ENOUGH_TRAFFIC = "not enough traffic"
SCORED = ("ok", "error")


@dataclass(frozen=True)
class WarmupConfig:
    """Policy section ``gates.shadow_warmup``.

    :param min_requests: mirrored requests the shadow must have scored.
    :param min_agreement: share of rows where both predict the same (within tolerance).
    :param agreement_tolerance: numeric predictions this close count as the same.
    :param max_psi: PSI of the shadow's predictions against the champion's.
    :param psi_bins: bins for numeric predictions with many distinct values.
    :param max_p50_ratio: shadow/champion median latency.
    :param max_p99_ratio: shadow/champion 99th-percentile latency.
    :param max_error_rate: share of mirrored requests the shadow failed on.
    :param max_fallback_rate: share of the window's requests the fallback answered.
    :param min_labels: labelled rows needed before accuracy is judged.
    :param max_accuracy_drop: champion accuracy minus shadow accuracy.
    :param label_column: the label column of the labels file.
    """

    min_requests: int = 200
    min_agreement: float = 0.95
    agreement_tolerance: float = 0.0
    max_psi: float = 0.2
    psi_bins: int = 10
    max_p50_ratio: float = 1.5
    max_p99_ratio: float = 2.0
    max_error_rate: float = 0.01
    max_fallback_rate: float = 0.05
    min_labels: int = 30
    max_accuracy_drop: float = 0.02
    label_column: str = "label"

    def __post_init__(self) -> None:
        if self.min_requests < 1 or self.psi_bins < 2 or self.min_labels < 1:
            raise ValueError("min_requests and min_labels must be >= 1, psi_bins >= 2")
        for name in ("min_agreement", "max_error_rate", "max_fallback_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if min(self.max_psi, self.max_p50_ratio, self.max_p99_ratio, self.agreement_tolerance) < 0:
            raise ValueError("thresholds must not be negative")


def _number(text: Any) -> float | None:
    try:
        value = json.loads(text) if isinstance(text, str) else text
        return None if isinstance(value, bool) or value is None else float(value)
    except (TypeError, ValueError):
        return None


def _same(a: Any, b: Any, tolerance: float) -> bool:
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return abs(x - y) <= tolerance
    return bool(a == b)


def psi(expected: list[Any], actual: list[Any], bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected`` (categories or bins)."""
    import numpy as np

    eps = 1e-4
    numbers = [_number(v) for v in expected + actual]
    distinct = len(set(expected) | set(actual))
    if all(n is not None for n in numbers) and distinct > bins:
        exp = np.array(numbers[: len(expected)], dtype=float)
        act = np.array(numbers[len(expected) :], dtype=float)
        edges = np.unique(np.quantile(exp, np.linspace(0, 1, bins + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        e_share = np.histogram(exp, edges)[0] / len(exp)
        a_share = np.histogram(act, edges)[0] / len(act)
    else:
        keys = sorted(set(map(str, expected)) | set(map(str, actual)))
        e_share = np.array([sum(str(v) == k for v in expected) for k in keys]) / len(expected)
        a_share = np.array([sum(str(v) == k for v in actual) for k in keys]) / len(actual)
    e_share, a_share = np.clip(e_share, eps, None), np.clip(a_share, eps, None)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def _window(frame: pd.DataFrame, shadow_version: str | None) -> tuple[pd.DataFrame, str | None]:
    shadows = frame["shadow_version"].dropna()
    version = shadow_version or (str(shadows.iloc[-1]) if len(shadows) else None)
    if version is None:
        return frame.iloc[0:0], None
    return frame[frame["shadow_version"] == version], version


def _ratios(pairs: pd.DataFrame, champion: str, shadow: str, prefix: str) -> dict[str, float]:
    import numpy as np

    if champion not in pairs or shadow not in pairs:
        return {}
    both = pairs.dropna(subset=[champion, shadow])
    if both.empty:
        return {}
    ours, theirs = both[champion].to_numpy(float), both[shadow].to_numpy(float)
    out = {}
    for q, name in ((50, "p50"), (99, "p99")):
        c, s = float(np.percentile(ours, q)), float(np.percentile(theirs, q))
        out[f"{prefix}champion_{name}_ms"], out[f"{prefix}shadow_{name}_ms"] = c, s
        out[f"{prefix}{name}_ratio"] = s / c if c > 0 else math.inf
    return out


def _latency(window: pd.DataFrame) -> dict[str, float]:
    """Ratios of model CPU time (judged) and of wall time (reported as ``wall_*``).

    The shadow runs on a background thread while answers are served, so its wall time
    includes waiting for the interpreter; CPU time per prediction compares the models' own
    cost. A log without CPU times is judged on wall time.
    """
    per_request = window.drop_duplicates("request_id")
    pairs = per_request[per_request["shadow_status"] == "ok"]
    wall = _ratios(pairs, "champion_latency_ms", "shadow_latency_ms", "wall_")
    cpu = _ratios(pairs, "champion_cpu_ms", "shadow_cpu_ms", "")
    if not cpu:
        cpu = {k.removeprefix("wall_"): v for k, v in wall.items()}
    return {**wall, **cpu}


def _accuracy(scored: pd.DataFrame, labels: pd.DataFrame | None, column: str) -> dict[str, Any]:
    if labels is None:
        return {}
    if "request_id" not in labels.columns or column not in labels.columns:
        raise DataError(f"labels file needs columns request_id and {column!r}")
    keys = ["request_id", "row"] if "row" in labels.columns else ["request_id"]
    labels = labels.astype({"request_id": str})
    joined = scored.merge(labels[[*keys, column]], on=keys, how="inner")
    joined = joined.dropna(subset=["champion_prediction", "shadow_prediction", column])
    if joined.empty:
        return {"labelled_rows": 0}
    truth = [json.dumps(v.item() if hasattr(v, "item") else v) for v in joined[column]]
    champion = [_same(p, t, 0.0) for p, t in zip(joined["champion_prediction"], truth, strict=True)]
    shadow = [_same(p, t, 0.0) for p, t in zip(joined["shadow_prediction"], truth, strict=True)]
    return {
        "labelled_rows": len(joined),
        "champion_accuracy": sum(champion) / len(joined),
        "shadow_accuracy": sum(shadow) / len(joined),
    }


def warmup_metrics(
    frame: pd.DataFrame,
    config: WarmupConfig,
    labels: pd.DataFrame | None = None,
    shadow_version: str | None = None,
) -> dict[str, Any]:
    """The comparison over the log rows of one shadow version."""
    window, version = _window(frame, shadow_version)
    requests = window.drop_duplicates("request_id")
    mirrored = requests[requests["shadow_status"].isin(SCORED)]
    scored = window[(window["shadow_status"] == "ok") & window["champion_prediction"].notna()]
    errors = (mirrored["shadow_status"] == "error").mean() if len(mirrored) else 0.0
    fallbacks = (requests["fallback"].fillna("") != "").mean() if len(requests) else 0.0
    metrics: dict[str, Any] = {
        "shadow_version": version,
        "requests": len(requests),
        "mirrored_requests": len(mirrored),
        "scored_rows": len(scored),
        "dropped_requests": int((requests["shadow_status"] == "dropped").sum()),
        "error_rate": float(errors),
        "fallback_rate": float(fallbacks),
    }
    if len(scored):
        same = [
            _same(a, b, config.agreement_tolerance)
            for a, b in zip(scored["champion_prediction"], scored["shadow_prediction"], strict=True)
        ]
        metrics["agreement"] = sum(same) / len(same)
        metrics["psi"] = psi(
            list(scored["champion_prediction"]), list(scored["shadow_prediction"]), config.psi_bins
        )
    metrics.update(_latency(window))
    metrics.update(_accuracy(scored, labels, config.label_column))
    digests = window["shadow_sha256"].dropna().unique() if "shadow_sha256" in window else []
    metrics["shadow_sha256"] = str(digests[-1]) if len(digests) else None
    champions = window["champion_sha256"].dropna().unique() if "champion_sha256" in window else []
    metrics["champion_sha256"] = str(champions[-1]) if len(champions) else None
    return metrics


def _reasons(metrics: dict[str, Any], config: WarmupConfig) -> list[str]:
    if metrics["mirrored_requests"] < config.min_requests:
        return [
            f"{NOT_ENOUGH_TRAFFIC}: {metrics['mirrored_requests']} of {config.min_requests} "
            "mirrored requests scored"
        ]
    checks = [
        ("agreement", "<", config.min_agreement),
        ("psi", ">", config.max_psi),
        ("p50_ratio", ">", config.max_p50_ratio),
        ("p99_ratio", ">", config.max_p99_ratio),
        ("error_rate", ">", config.max_error_rate),
        ("fallback_rate", ">", config.max_fallback_rate),
    ]
    reasons = []
    for name, op, limit in checks:
        value = metrics.get(name)
        if value is None:
            reasons.append(f"{name}: could not be measured (no scored rows)")
        elif (op == "<" and value < limit) or (op == ">" and value > limit):
            reasons.append(f"{name} {value:.4g} {'below' if op == '<' else 'above'} {limit:g}")
    if metrics.get("labelled_rows", 0) >= config.min_labels:
        drop = metrics["champion_accuracy"] - metrics["shadow_accuracy"]
        metrics["accuracy_drop"] = drop
        if drop > config.max_accuracy_drop:
            reasons.append(f"accuracy drop {drop:.4g} above {config.max_accuracy_drop:g}")
    return reasons


def warmup_gate(
    log_uri: str,
    config: WarmupConfig | None = None,
    *,
    labels_uri: str | None = None,
    shadow_version: str | None = None,
    s3: S3ClientFactory | None = None,
) -> GateResult:
    """Run the gate over the prediction log at ``log_uri``."""
    from mlsecops_provider.core.data.datasets import read_table

    config, started = config or WarmupConfig(), utcnow()
    frame = read_prediction_log(log_uri, s3, missing_ok=False)
    labels = read_table(labels_uri, None, s3)[0] if labels_uri else None
    metrics = warmup_metrics(frame, config, labels, shadow_version)
    reasons = _reasons(metrics, config)
    verdict = Verdict.FAIL if reasons else Verdict.PASS
    subjects = {"log": log_uri}
    if metrics.get("shadow_sha256"):
        subjects["model"] = str(metrics["shadow_sha256"])
    if metrics.get("champion_sha256"):
        subjects["champion"] = str(metrics["champion_sha256"])
    message = f"shadow v{metrics['shadow_version']} warm-up {verdict.value}: " + (
        "; ".join(reasons) if reasons else f"{metrics['mirrored_requests']} requests agree"
    )
    return GateResult(
        gate=GATE,
        verdict=verdict,
        subjects=subjects,
        metrics={k: v for k, v in metrics.items() if v is not None},
        findings=[{"severity": "high", "reason": r} for r in reasons],
        message=message,
        started_at=started,
    ).finished()


def not_enough_traffic(result: GateResult) -> bool:
    return any(str(f.get("reason", "")).startswith(NOT_ENOUGH_TRAFFIC) for f in result.findings)


def shadow_traffic(
    log_uri: str, shadow_version: str | None = None, s3: S3ClientFactory | None = None
) -> dict[str, Any]:
    """How much traffic the shadow has scored so far (for the traffic sensor)."""
    frame = read_prediction_log(log_uri, s3)
    window, version = _window(frame, shadow_version)
    requests = window.drop_duplicates("request_id")
    mirrored = requests[requests["shadow_status"].isin(SCORED)]
    return {
        "log_uri": log_uri,
        "shadow_version": version,
        "requests": len(requests),
        "mirrored_requests": len(mirrored),
        "first_seen": str(requests["time"].min()) if len(requests) else None,
    }
