"""Which pictures a run's verified gate reports give, drawn with :mod:`.charts`.

Reports are recognised by the shape of their details, not by gate name, and only verified
reports are drawn (a tampered one is text on the page, never a picture):

- shadow evaluation: ``estimates.all.<metric>`` with ``delta``/``delta_ci`` (and ``relative``/
  ``relative_ci``) — the change of each metric against the champion with its interval;
- data validation: ``screens.drift.metrics.columns.<column>.psi`` (and ``drifted``) — PSI per
  column against the policy's threshold;
- explainability: ``importance: [{feature, mean_abs_shap, share}]`` — importance bars;
- fairness (:mod:`mlsecops_provider.core.fairness.gate`): ``columns.<sensitive column>.groups``
  = ``[{group, size, judged, candidate: {<rate>: {value, ci}}, champion: {...}}]`` — per-group
  rates with their intervals, candidate and champion, one chart per column and rate; also
  plain tables, ``{attribute: {group: {metric: value}}}`` or a list of
  ``{attribute|feature|sensitive_feature, group, <metric>: value}`` under ``by_group``,
  ``groups`` or ``per_group`` — one bar chart per attribute and metric;
- prediction log (shadow serving): a list of ``{time|window|start|at, agreement,
  latency_ms|latency_p95_ms|p95_latency_ms, shadow_latency_ms}`` under ``timeline``,
  ``windows`` or ``log.windows``; or, for a report whose subject ``log`` is a prediction log
  (the ``shadow_warmup`` gate), windows read from that log (:mod:`.serving_log`) —
  agreement and latency over time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from mlsecops_provider.plugins import charts
from mlsecops_provider.plugins.gate_evidence import GateView, Integrity
from mlsecops_provider.plugins.serving_log import Windows

log = logging.getLogger(__name__)
MAX_FAIRNESS_CHARTS = 6
TIME_KEYS = ("time", "window", "window_start", "start", "at", "timestamp")
AGREEMENT_KEYS = ("agreement", "agreement_rate")
LATENCY_KEYS = ("latency_p95_ms", "p95_latency_ms", "latency_ms_p95", "latency_ms")
GROUP_KEYS = ("by_group", "groups", "per_group")
ATTRIBUTE_KEYS = ("attribute", "sensitive_feature", "feature")


def dig(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...``, or None as soon as a level is not a mapping or lacks the key."""
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def gate_pictures(gate: GateView, log_windows: Windows | None = None) -> list[str]:
    """The SVG figures of one gate (``[]`` unless its report is verified and has the data).

    ``log_windows``: reads a prediction log a verified report names (subject ``log``) into
    windows (:func:`.serving_log.reader`); without it, logs are not read.
    """
    if gate.integrity is not Integrity.VERIFIED or not isinstance(gate.details, Mapping):
        return []
    details = gate.details
    log_uri = gate.subjects.get("log")
    if log_windows is not None and isinstance(log_uri, str) and not _windows(details):
        version = gate.metrics.get("shadow_version")
        details = {**details, "windows": log_windows(log_uri, str(version) if version else None)}
    figures = [
        shadow_deltas(details),
        drift_per_column(details),
        importance_bars(details),
        *fairness_groups(details),
        *prediction_log(details),
    ]
    return [f for f in figures if f]


def _tone(higher_is_better: bool | None, low: float | None, high: float | None) -> str:
    if higher_is_better is None or low is None or high is None:
        return "info"
    if low > 0 or high < 0:  # the interval excludes zero
        return "good" if (low > 0) == higher_is_better else "bad"
    return "neutral"


def shadow_deltas(details: Mapping[str, Any]) -> str:
    from mlsecops_provider.core.shadow.policy import KNOWN_METRICS, higher_is_better

    overall = dig(details, "estimates", "all")
    if not isinstance(overall, Mapping):
        return ""
    estimates = {
        str(m): e
        for m, e in overall.items()
        if isinstance(e, Mapping) and e.get("delta") is not None
    }
    if not estimates:
        return ""
    relative = all(charts.number(e.get("relative")) is not None for e in estimates.values())
    key = "relative" if relative else "delta"
    rows = []
    for metric, est in estimates.items():
        interval = est.get(f"{key}_ci")
        low, high = (None, None)
        if isinstance(interval, list | tuple) and len(interval) == 2:
            low, high = interval
        better = higher_is_better(metric) if metric in KNOWN_METRICS else None
        tone = _tone(better, charts.number(low), charts.number(high))
        rows.append((metric, est.get(key), low, high, tone))
    what = "relative change" if relative else "change"
    return charts.intervals(
        f"Candidate vs champion: {what} per metric",
        rows,
        percent=relative,
        caption="Point: candidate − champion; bar: its bootstrap interval. Green: better with the "
        "interval clear of zero; red: worse; grey: within noise.",
    )


def drift_per_column(details: Mapping[str, Any]) -> str:
    columns = dig(details, "screens", "drift", "metrics", "columns")
    if not isinstance(columns, Mapping):
        return ""
    rows = [
        (column, stats.get("psi"), "bad" if stats.get("drifted") else "good")
        for column, stats in columns.items()
        if isinstance(stats, Mapping)
    ]
    rows.sort(key=lambda r: -(charts.number(r[1]) or 0.0))
    threshold = _policy_psi_threshold()
    return charts.bars(
        "Drift per column (PSI against the reference)",
        rows,
        threshold=threshold,
        threshold_label="policy PSI threshold",
        caption="Red: the column drifted (PSI, or KS for numeric columns, beyond the thresholds).",
    )


def _policy_psi_threshold() -> float | None:
    from mlsecops_provider.core.errors import MLSecOpsError
    from mlsecops_provider.core.policy import load_policy

    try:
        policy = load_policy(os.environ.get("MLSECOPS_POLICY") or None)
    except MLSecOpsError as err:
        log.warning("drift picture without a threshold: %s", err)
        return None
    return charts.number(dig(policy.gates, "data_validation", "screens", "psi_threshold"))


def importance_bars(details: Mapping[str, Any]) -> str:
    table = dig(details, "importance")
    if not isinstance(table, list):
        return ""
    rows = [
        (row.get("feature"), row.get("share"), "info")
        for row in table
        if isinstance(row, Mapping) and row.get("feature") is not None
    ]
    return charts.bars(
        "Feature importance (share of mean |SHAP|)",
        rows,
        percent=True,
        caption="Each input column's share of the candidate's mean absolute SHAP value.",
    )


def _group_table(details: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{attribute: {group: {metric: value}}}`` from either accepted shape."""
    raw = next((details[k] for k in GROUP_KEYS if k in details), None)
    if isinstance(raw, Mapping):
        return {
            str(attr): {str(g): dict(m) for g, m in groups.items() if isinstance(m, Mapping)}
            for attr, groups in raw.items()
            if isinstance(groups, Mapping)
        }
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for row in raw if isinstance(raw, list) else []:
        if not isinstance(row, Mapping) or row.get("group") is None:
            continue
        attr = next((str(row[k]) for k in ATTRIBUTE_KEYS if row.get(k) is not None), "group")
        metrics = {k: v for k, v in row.items() if k != "group" and k not in ATTRIBUTE_KEYS}
        table.setdefault(attr, {})[str(row["group"])] = metrics
    return table


FAIRNESS_RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")


def fairness_intervals(details: Mapping[str, Any]) -> list[str]:
    """The fairness gate's per-group rates with intervals (candidate, and champion if any)."""
    columns = dig(details, "columns")
    if not isinstance(columns, Mapping):
        return []
    figures = []
    for column, result in columns.items():
        groups = dig(result, "groups")
        if not isinstance(groups, list):
            continue
        groups = [g for g in groups if isinstance(g, Mapping) and "group" in g]
        for rate in FAIRNESS_RATES:
            rows = []
            for group in groups:
                for model, tone in (("candidate", "info"), ("champion", "neutral")):
                    value = dig(group, model, rate, "value")
                    ci = dig(group, model, rate, "ci")
                    low, high = (None, None)
                    if isinstance(ci, list | tuple) and len(ci) == 2:
                        low, high = ci
                    label = str(group["group"]) + ("" if model == "candidate" else " (champion)")
                    if not group.get("judged", True):
                        label += " (too small)"
                    rows.append((label, value, low, high, tone))
            figure = charts.intervals(
                f"{rate} by {column}",
                rows,
                caption="Point: the group's rate; bar: its bootstrap interval.",
            )
            if figure:
                figures.append(figure)
    return figures[:MAX_FAIRNESS_CHARTS]


def fairness_groups(details: Mapping[str, Any]) -> list[str]:
    if not isinstance(details, Mapping):
        return []
    real = fairness_intervals(details)
    if real:
        return real
    figures = []
    for attr, groups in _group_table(details).items():
        metrics: list[str] = []
        for values in groups.values():
            metrics.extend(
                k for k, v in values.items() if charts.number(v) is not None and k not in metrics
            )
        for metric in metrics:
            rows = [(g, values.get(metric), "info") for g, values in groups.items()]
            if sum(charts.number(v) is not None for _, v, _ in rows) < 2:
                continue
            figures.append(charts.bars(f"{metric} by {attr}", rows))
    return [f for f in figures if f][:MAX_FAIRNESS_CHARTS]


def _windows(details: Mapping[str, Any]) -> Sequence[Any]:
    for key in ("timeline", "windows"):
        if isinstance(details.get(key), list):
            return list(details[key])
    nested = details.get("log")
    if isinstance(nested, Mapping) and isinstance(nested.get("windows"), list):
        return list(nested["windows"])
    return []


def prediction_log(details: Mapping[str, Any]) -> list[str]:
    if not isinstance(details, Mapping):
        return []
    rows = [w for w in _windows(details) if isinstance(w, Mapping)]
    if len(rows) < 2:
        return []

    def series(keys: Sequence[str]) -> list[tuple[Any, Any]]:
        key = next((k for k in keys if any(k in r for r in rows)), None)
        if key is None:
            return []
        return [(next((r[t] for t in TIME_KEYS if t in r), ""), r.get(key)) for r in rows]

    return [
        charts.lines("Champion–shadow agreement over time", series(AGREEMENT_KEYS), percent=True),
        charts.lines("Prediction latency over time (ms)", series(LATENCY_KEYS), tone="warn"),
        charts.lines("Shadow latency over time (median ms)", series(("shadow_latency_ms",))),
    ]
