"""The fairness GateResult and its SVG picture (per-group rates with bootstrap intervals).

The SVG is plain markup (no script, no external reference); every text is escaped.
"""

from __future__ import annotations

import html
import re
from importlib import metadata
from typing import Any

from mlsecops_provider.core.evidence import GateResult, Verdict
from mlsecops_provider.core.fairness.config import GATE
from mlsecops_provider.core.fairness.stats import RATES

TOOLS = ("fairlearn", "scikit-learn", "numpy")
MAX_MESSAGES = 3
COLORS = {"candidate": "#2f6db5", "champion": "#888888"}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def gate_result(
    details: dict[str, Any],
    findings: list[dict[str, Any]],
    warnings: list[dict[str, Any]],
    subjects: dict[str, str],
) -> GateResult:
    """Error when a check cannot be computed, fail on a failed check, warn on a warning."""
    statuses = {f["status"] for f in findings}
    if findings or warnings:
        messages = [f["message"] for f in findings + warnings]
        more = len(messages) - MAX_MESSAGES
        message = "; ".join(messages[:MAX_MESSAGES]) + (f" (+{more} more)" if more > 0 else "")
    else:
        checked = sum(len(c["checks"]) for c in details["columns"].values())
        message = f"{checked} fairness check(s) passed on {', '.join(details['columns'])}"
    verdict = (
        Verdict.ERROR if "error" in statuses
        else Verdict.FAIL if findings
        else Verdict.WARN if warnings
        else Verdict.PASS
    )  # fmt: skip
    metrics: dict[str, Any] = {"rows": details["rows"], "checks_failed": len(findings)}
    for column, result in details["columns"].items():
        for name in ("equalized_odds_difference", "demographic_parity_difference"):
            value = result["disparities"].get(name, {}).get("candidate")
            if value is not None:
                metrics[f"{re.sub(r'[^A-Za-z0-9_.-]', '_', column)}.{name}"] = value
    return GateResult(
        GATE,
        verdict,
        subjects=subjects,
        metrics=metrics,
        findings=[*findings, *[{**w, "severity": "warn"} for w in warnings]],
        tool_versions={name: _version(name) for name in TOOLS},
        message=message,
    ).finished()


def render_svg(details: dict[str, Any]) -> str:
    """One row of panels per sensitive column: each rate per group, point and interval."""
    esc = html.escape
    panel_w, label_w, row_h, head = 170, 110, 16, 44
    blocks, y0 = [], 30
    models = ["candidate"] + (["champion"] if details.get("champion_status") == "compared" else [])
    for column, result in details["columns"].items():
        if not result["judged"]:
            continue
        groups = result["groups"]
        height = head + row_h * len(groups) * len(models) + 10
        blocks.append(f'<text x="10" y="{y0 + 14}" font-weight="bold">{esc(column)}</text>')
        for p, rate in enumerate(RATES):
            x0 = label_w + p * panel_w
            blocks.append(_axis(x0, y0 + head - 8, panel_w - 20, rate))
            for g, group in enumerate(groups):
                for m, model in enumerate(models):
                    y = y0 + head + row_h * (g * len(models) + m) + 6
                    if p == 0 and m == 0:
                        note = "" if group["judged"] else " (not judged)"
                        blocks.append(
                            f'<text x="{label_w - 8}" y="{y + 4}" text-anchor="end">'
                            f"{esc(group['group'])} n={group['size']}{esc(note)}</text>"
                        )
                    blocks.append(_point(x0, y, panel_w - 20, group[model][rate], model))
        y0 += height
    width = label_w + panel_w * len(RATES) + 10
    legend = "".join(
        f'<circle cx="{label_w + i * 110}" cy="14" r="4" fill="{COLORS[m]}"/>'
        f'<text x="{label_w + 8 + i * 110}" y="18">{m}</text>'
        for i, m in enumerate(models)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y0 + 10}" '
        f'font-family="sans-serif" font-size="11">'
        f'<text x="10" y="18" font-weight="bold">Per-group rates (95% intervals)</text>{legend}'
        + "".join(blocks)
        + "</svg>"
    )


def _axis(x0: int, y: int, width: int, rate: str) -> str:
    return (
        f'<text x="{x0}" y="{y - 6}" font-size="10">{html.escape(rate)}</text>'
        f'<line x1="{x0}" y1="{y}" x2="{x0 + width}" y2="{y}" stroke="#999"/>'
        f'<text x="{x0}" y="{y + 10}" font-size="8">0</text>'
        f'<text x="{x0 + width - 6}" y="{y + 10}" font-size="8">1</text>'
    )


def _point(x0: int, y: int, width: int, metric: dict[str, Any], model: str) -> str:
    value, ci = metric.get("value"), metric.get("ci")
    if value is None:
        return f'<text x="{x0}" y="{y + 4}" font-size="9">n/a</text>'
    color = COLORS[model]
    out = ""
    if ci:
        x1, x2 = x0 + ci[0] * width, x0 + ci[1] * width
        out += f'<line x1="{x1:.1f}" y1="{y}" x2="{x2:.1f}" y2="{y}" stroke="{color}"/>'
    cx = x0 + value * width
    out += (
        f'<circle cx="{cx:.1f}" cy="{y}" r="3" fill="{color}"><title>{model} {value:.3f}'
        + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
        + "</title></circle>"
    )
    return out
