"""The shadow evaluation's GateResult and its readable HTML page.

The page is self-contained: tables of the metrics with their bootstrap intervals, the
threshold checks, the model comparison and robustness, and a plot of the metric changes
(candidate − champion) with their intervals, a PNG drawn with matplotlib's Agg backend and
embedded as a base64 data URI. Every value on the page goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import io
from importlib import metadata
from typing import Any

from mlsecops_provider.core.evidence import GateResult, Verdict
from mlsecops_provider.core.shadow.policy import GATE, PAIR_METRICS, Estimate

TOOLS = ("mlflow", "scikit-learn", "skops", "numpy", "scipy", "pandas")
MAX_MESSAGES = 3
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.9em}
th{background:#f3f3f3}.pass{color:#176f2c;font-weight:600}.fail{color:#b00020;font-weight:600}
.skipped{color:#777}.note{background:#fff7d6;padding:.5em 1em;border-left:4px solid #e0b000}
"""


def gate_result(
    overall: dict[str, Estimate],
    details: dict[str, Any],
    findings: list[dict[str, Any]],
    subjects: dict[str, str],
) -> GateResult:
    """The GateResult: fail on any finding; message names the first few; scalar metrics."""
    rows = details["thresholds"]
    failed = [f["message"] for f in findings]
    checked = sum(1 for r in rows if r["status"] != "skipped")
    if failed:
        more = len(failed) - MAX_MESSAGES
        message = "; ".join(failed[:MAX_MESSAGES]) + (f" (+{more} more)" if more > 0 else "")
    else:
        message = f"{checked} threshold check(s) passed"
    if details.get("note"):
        message = f"{message} | {details['note']}"
    metrics = _metrics(overall, details)
    metrics["thresholds_checked"] = checked
    metrics["thresholds_failed"] = len(findings)
    return GateResult(
        GATE,
        Verdict.FAIL if findings else Verdict.PASS,
        subjects=subjects,
        metrics=metrics,
        findings=findings,
        tool_versions={name: metadata.version(name) for name in TOOLS},
        message=message,
    ).finished()


def _metrics(overall: dict[str, Estimate], details: dict[str, Any]) -> dict[str, Any]:
    """Scalars for MLflow: candidate/champion values, deltas and their intervals."""
    metrics: dict[str, Any] = {"rows": details["rows"]}
    for name, est in overall.items():
        if name in PAIR_METRICS:
            metrics[name] = est.candidate
            continue
        metrics[f"candidate.{name}"] = est.candidate
        if est.champion is None:
            continue
        metrics[f"champion.{name}"] = est.champion
        metrics[f"delta.{name}"] = est.delta
        if est.delta_ci is not None:
            metrics[f"delta.{name}.low"], metrics[f"delta.{name}.high"] = est.delta_ci
    mcnemar = details["comparison"].get("mcnemar")
    if mcnemar:
        metrics["mcnemar_p_value"] = mcnemar["p_value"]
    for model in ("candidate", "champion"):
        for key in ("fooling_rate", "accuracy_drop"):
            value = details["robustness"].get(model, {}).get(key)
            if value is not None:
                metrics[f"robustness.{model}.{key}"] = value
    return {k: v for k, v in metrics.items() if v is not None and v == v}


def render_html(result: GateResult, details: dict[str, Any]) -> str:
    """A self-contained HTML page of the report."""
    e = html.escape
    verdict = result.verdict.value
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(GATE)}</title>"
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Shadow evaluation: <span class='{e(verdict)}'>{e(verdict.upper())}</span></h1>",
        f"<p>{e(result.message)}</p>",
    ]
    if details.get("note"):
        parts.append(f"<p class='note'>{e(details['note'])}</p>")
    parts.append(_models_table(details))
    parts.append(_plot_img(details))
    parts.append("<h2>Thresholds</h2>" + _thresholds_table(details["thresholds"]))
    for group, metrics in details["estimates"].items():
        title = "Metrics on all rows" if group == "all" else f"Slice {group}"
        parts.append(f"<h2>{e(title)}</h2>" + _metrics_table(metrics, details))
    parts.append("<h2>Comparison</h2>" + _kv_table(_flat(details["comparison"])))
    parts.append("<h2>Robustness</h2>" + _kv_table(_flat(details["robustness"])))
    boot = details["bootstrap"]
    parts.append(
        f"<h2>Method</h2><p>{e(boot['method'])}; {e(str(boot['resamples']))} resamples, "
        f"{e(format(boot['confidence'], '.0%'))} intervals, seed {e(str(boot['seed']))}.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, float) for v in value)
    ):
        text = f"[{value[0]:.4g}, {value[1]:.4g}]"
    else:
        text = "" if value is None else str(value)
    return f"<td>{html.escape(text)}</td>"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _models_table(details: dict[str, Any]) -> str:
    rows = []
    for role in ("candidate", "champion"):
        model = details.get(role)
        if model:
            rows.append([role, model["uri"], model["version"], model["model_type"],
                         model["size_bytes"], model["digest"]])  # fmt: skip
    data = (
        f"<p>{html.escape(str(details['rows']))} rows, label {html.escape(details['label'])}, "
        f"task {html.escape(details['task'])}, champion: {html.escape(details['champion_status'])}"
        "</p>"
    )
    return data + _table(["role", "uri", "version", "type", "bytes", "digest"], rows)


def _metrics_table(metrics: dict[str, dict[str, Any]], details: dict[str, Any]) -> str:
    rows = [
        [name, m["candidate"], m.get("candidate_ci"), m.get("champion"), m.get("champion_ci"),
         m.get("delta"), m.get("delta_ci"), m.get("relative")]
        for name, m in metrics.items()
    ]  # fmt: skip
    header = ["metric", "candidate", "CI", "champion", "CI", "change", "change CI", "relative"]
    return _table(header, rows)


def _thresholds_table(rows: list[dict[str, Any]]) -> str:
    cells = []
    for row in rows:
        status = html.escape(row["status"])
        reasons = "; ".join(c.get("message", c["check"] + " ok") for c in row["checks"])
        cells.append(
            f"<tr><td>{html.escape(row['threshold'])}</td><td class='{status}'>{status}</td>"
            f"<td>{html.escape(reasons)}</td></tr>"
        )
    return (
        f"<table><tr><th>threshold</th><th>status</th><th>checks</th></tr>{''.join(cells)}</table>"
    )


def _flat(data: Any, prefix: str = "") -> list[list[Any]]:
    if isinstance(data, dict):
        out: list[list[Any]] = []
        for key, value in data.items():
            out.extend(_flat(value, f"{prefix}{key}."))
        return out
    return [[prefix.rstrip("."), data]]


def _kv_table(rows: list[list[Any]]) -> str:
    return _table(["name", "value"], rows) if rows else "<p>not applicable</p>"


def _plot_img(details: dict[str, Any]) -> str:
    """The metric changes (or, without a champion, the values) with intervals, as a PNG."""
    points = _plot_points(details)
    if not points:
        return ""
    png = _plot_png(points, details.get("champion_status") == "compared")
    data = base64.b64encode(png).decode()
    alt = "metric changes with bootstrap intervals"
    return f"<h2>Changes</h2><img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def _plot_points(details: dict[str, Any]) -> list[tuple[str, float, float, float, bool]]:
    """All metrics on all rows, and the thresholded metrics of each slice; failed ones marked."""
    compared = details.get("champion_status") == "compared"
    key, ci_key = ("delta", "delta_ci") if compared else ("candidate", "candidate_ci")
    failed = {r["threshold"] for r in details["thresholds"] if r["status"] == "fail"}
    sliced = {(r["slice"], r["metric"]) for r in details["thresholds"] if r["slice"]}
    points = []
    for group, metrics in details["estimates"].items():
        for name, est in metrics.items():
            value, ci = est.get(key), est.get(ci_key)
            if value is None or ci is None or (group != "all" and (group, name) not in sliced):
                continue
            label = name if group == "all" else f"{name} [{group}]"
            points.append((label, float(value), float(ci[0]), float(ci[1]), label in failed))
    return points


def _plot_png(points: list[tuple[str, float, float, float, bool]], compared: bool) -> bytes:
    from matplotlib.figure import Figure  # no pyplot: no global backend state (Agg for PNG)

    fig = Figure(figsize=(7, 0.35 * len(points) + 1.2))
    ax = fig.add_subplot()
    for y, (_, value, low, high, failed) in enumerate(points):
        color = "#b00020" if failed else "#1f5fa8"
        ax.errorbar([value], [y], xerr=[[value - low], [high - value]], fmt="o", capsize=3,
                    color=color)  # fmt: skip
    ys = list(range(len(points)))
    ax.set_yticks(ys, [p[0] for p in points], fontsize=8)
    ax.invert_yaxis()
    if compared:
        ax.axvline(0.0, color="#888", linewidth=1)
        ax.set_xlabel("candidate − champion (bootstrap interval; red: threshold failed)")
    else:
        ax.set_xlabel("candidate value (bootstrap interval)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()
