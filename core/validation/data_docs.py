"""The data validation gate's Data Docs page: self-contained HTML, everything escaped."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlsecops_provider.core.evidence import GateResult
    from mlsecops_provider.core.validation.poisoning import PoisoningReport


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>
body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:2em}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}
.pass{{color:#176f2c}}.warn,.skipped{{color:#9a6700}}.fail,.error{{color:#b3261e}}
</style></head><body><h1>{title}</h1><p class="{verdict}">Verdict: <b>{verdict}</b> - {message}</p>
<h2>Expectations</h2><table><tr><th>#</th><th>Expectation</th><th>Column</th><th>Severity</th>
<th>Status</th><th>Observed</th></tr>{expectations}</table>
<h2>Poisoning screens</h2><table><tr><th>Screen</th><th>Status</th><th>Figures</th></tr>{screens}
</table><p>Started {started}, ended {ended}. Sampled row values are not shown.</p></body></html>
"""


def render_html(
    result: GateResult, suite_name: str, rows: list[dict[str, Any]], report: PoisoningReport | None
) -> str:
    """A self-contained Data Docs page (no scripts, no CDN) of the validation and screens."""

    def tr(cells: list[Any], status: str) -> str:
        tds = "".join(f"<td>{html.escape('' if c is None else str(c))}</td>" for c in cells)
        return f'<tr class="{html.escape(status)}">{tds}</tr>'

    keys = ("index", "type", "column", "severity", "status", "observed")
    expectations = "".join(tr([r[k] for k in keys], r["status"]) for r in rows)
    screens = "".join(
        tr([s.name, s.status, s.reason or _figures(s.metrics)], s.status)
        for s in (report.screens if report else ())
    )
    return PAGE.format(
        title=html.escape(f"Data validation: {suite_name}"),
        verdict=result.verdict.value,
        message=html.escape(result.message),
        expectations=expectations,
        screens=screens or tr(["(screens disabled)", "", ""], "skipped"),
        started=html.escape(result.started_at),
        ended=html.escape(result.ended_at or ""),
    )


def _figures(metrics: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in metrics.items() if isinstance(v, (int, float, str)))
