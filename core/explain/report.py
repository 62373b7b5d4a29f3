"""The explainability GateResult, its SVG picture (importance bars) and a small HTML page.

The SVG is plain markup (no script, no external reference); every text goes through
:func:`html.escape`.
"""

from __future__ import annotations

import html
from importlib import metadata
from typing import Any

from mlsecops_provider.core.evidence import GateResult, Verdict
from mlsecops_provider.core.explain.config import GATE

TOOLS = ("shap", "scikit-learn", "numpy", "scipy")
MAX_MESSAGES = 3
MAX_BARS = 20
COLORS = {"candidate": "#2f6db5", "champion": "#b0b0b0"}


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
    """Fail on a finding, warn on a drift warning, else pass."""
    table = details["importance"]
    top = ", ".join(f"{r['feature']} {r['share']:.2f}" for r in table[:3])
    if findings or warnings:
        messages = [f["message"] for f in findings + warnings]
        more = len(messages) - MAX_MESSAGES
        message = "; ".join(messages[:MAX_MESSAGES]) + (f" (+{more} more)" if more > 0 else "")
    else:
        message = f"top features: {top}"
    verdict = Verdict.FAIL if findings else Verdict.WARN if warnings else Verdict.PASS
    metrics: dict[str, Any] = {
        "rows_explained": details["rows_explained"],
        "features": len(table),
        "top_feature": table[0]["feature"] if table else "",
        "top_share": table[0]["share"] if table else 0.0,
        "forbidden_failed": len(findings),
        "drop_candidates": len(details["drop_candidates"]),
        "seconds": sum(e["seconds"] for e in details["explainers"].values()),
    }
    if details.get("drift"):
        rho = details["drift"]["rank_correlation"]
        if rho is not None:
            metrics["rank_correlation"] = rho
        metrics["top_k_overlap"] = details["drift"]["top_k_overlap"]
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
    """Horizontal bars: each input column's share of mean |SHAP|, candidate vs champion."""
    esc = html.escape
    table = details["importance"][:MAX_BARS]
    champ = {r["feature"]: r["share"] for r in details.get("champion_importance") or []}
    forbidden = {f["feature"] for f in details.get("forbidden", [])}
    bar_h, gap, left, width = 9, 8, 190, 360
    row_h = 2 * bar_h + gap
    top = 40
    height = top + row_h * len(table) + 30
    scale = max([r["share"] for r in table] + list(champ.values()) + [1e-9])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" '
        f'height="{height}" font-family="sans-serif" font-size="12">',
        '<text x="10" y="18" font-weight="bold">Share of mean |SHAP| per input column</text>',
        _legend(left, bool(champ)),
    ]
    for i, row in enumerate(table):
        y = top + i * row_h
        name = row["feature"] + (" (forbidden)" if row["feature"] in forbidden else "")
        color = "#b00020" if row["feature"] in forbidden else "#222"
        parts.append(
            f'<text x="{left - 6}" y="{y + bar_h + 3}" text-anchor="end" '
            f'fill="{color}">{esc(name)}</text>'
        )
        parts.append(_bar(left, y, row["share"] / scale * width, bar_h, "candidate", row["share"]))
        if champ:
            share = champ.get(row["feature"], 0.0)
            parts.append(_bar(left, y + bar_h, share / scale * width, bar_h, "champion", share))
    parts.append("</svg>")
    return "\n".join(parts)


def _bar(x: int, y: int, length: float, h: int, who: str, share: float) -> str:
    return (
        f'<rect x="{x}" y="{y}" width="{length:.1f}" height="{h}" fill="{COLORS[who]}">'
        f"<title>{who}: {share:.4f}</title></rect>"
        f'<text x="{x + length + 4:.1f}" y="{y + h - 1}" font-size="9">{share:.3f}</text>'
    )


def _legend(left: int, with_champion: bool) -> str:
    items = ["candidate"] + (["champion"] if with_champion else [])
    out = []
    for i, who in enumerate(items):
        x = left + i * 110
        out.append(
            f'<rect x="{x}" y="24" width="10" height="10" fill="{COLORS[who]}"/>'
            f'<text x="{x + 14}" y="33">{who}</text>'
        )
    return "".join(out)


def render_html(result: GateResult, details: dict[str, Any]) -> str:
    """A self-contained page: verdict, the SVG, the importance and drift tables."""
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(r['feature'])}</td><td>{r['mean_abs_shap']:.5g}</td>"
        f"<td>{r['share']:.4f}</td></tr>"
        for r in details["importance"]
    )
    drift = details.get("drift") or {}
    moved = "".join(
        f"<tr><td>{esc(m['feature'])}</td><td>{m['champion_share']:.4f}</td>"
        f"<td>{m['candidate_share']:.4f}</td><td>{m['change']:+.4f}</td></tr>"
        for m in drift.get("moved_most", [])
    )
    findings = "".join(f"<li>{esc(f['message'])}</li>" for f in result.findings)
    drops = ", ".join(esc(d) for d in details["drop_candidates"]) or "none"
    body = [
        f"<h1>Explainability: {esc(result.verdict.value.upper())}</h1>",
        f"<p>{esc(result.message)}</p>",
        f"<ul>{findings}</ul>" if findings else "",
        render_svg(details),
        "<h2>Importance (candidate)</h2><table><tr><th>feature</th><th>mean |SHAP|</th>"
        f"<th>share</th></tr>{rows}</table>",
        f"<p>Candidates to drop (~zero attribution): {drops}</p>",
    ]
    if drift:
        body.append(
            f"<h2>Drift from the champion</h2><p>rank correlation "
            f"{esc(str(drift['rank_correlation']))}, top-{drift['top_k']} overlap "
            f"{drift['top_k_overlap']:.2f}</p><table><tr><th>feature</th><th>champion</th>"
            f"<th>candidate</th><th>change</th></tr>{moved}</table>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Explainability'
        "</title><style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;"
        "padding:.2em .5em}table{border-collapse:collapse}</style></head><body>"
        + "".join(body)
        + "</body></html>"
    )
