"""HTML of the gate review pages: plain, script-free and escaped throughout.

Every string that comes from a DAG run or from evidence (DAG and run ids, gate names,
messages, metric names, finding columns and values, file names) passes through
:func:`esc`; CSS classes come from fixed tables, never from data. The pages carry no
JavaScript, and the API serves them with a Content-Security-Policy that forbids scripts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

from mlsecops_provider.plugins.gate_data import VERDICT_CHOICES, GateView, RunView

MAX_DETAILS_CHARS = 20_000
MAX_METRICS_OVERVIEW = 6
_BADGE = {
    "pass": "ok",
    "warn": "warn",
    "fail": "bad",
    "error": "bad",
    "tampered": "bad",
    "missing": "bad",
    "unreadable": "bad",
    "unverified": "warn",
    "verified": "ok",
    "success": "ok",
    "failed": "bad",
    "upstream_failed": "bad",
    "running": "warn",
    "queued": "warn",
    "up_for_retry": "warn",
}
_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
  color:#1a202c;background:#f7f8fa}
header{background:#017cee;color:#fff;padding:10px 20px;display:flex;
  justify-content:space-between;align-items:center}
header h1{font-size:18px;margin:0}header a{color:#fff}
main{padding:16px 20px}
form.filters{display:flex;gap:12px;align-items:end;margin-bottom:16px;flex-wrap:wrap}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#4a5568}
select,button{font:inherit;padding:4px 8px}
section.run{background:#fff;border:1px solid #e2e8f0;border-radius:6px;margin-bottom:16px;
  padding:12px 14px;overflow-x:auto}
section.run h2{font-size:15px;margin:0 0 6px}
.meta{color:#4a5568;font-size:12px;margin-bottom:8px}
.meta span{margin-right:14px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #edf2f7;text-align:left;padding:5px 6px;vertical-align:top}
td.wrap{overflow-wrap:anywhere;min-width:120px}td.msg{min-width:240px}
th{font-size:12px;color:#4a5568;font-weight:600}
table.findings{font-size:12px;margin-top:4px}
table.findings th,table.findings td{border:1px solid #edf2f7;padding:2px 4px}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;
  white-space:nowrap}
.badge.ok{background:#c6f6d5;color:#22543d}.badge.warn{background:#fefcbf;color:#744210}
.badge.bad{background:#fed7d7;color:#822727}.badge.unknown{background:#e2e8f0;color:#2d3748}
code,pre{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.scroll{overflow-x:auto;max-width:520px}
pre{white-space:pre-wrap;background:#f7fafc;border:1px solid #edf2f7;padding:6px;
  max-height:480px;overflow:auto}
.kv{margin:0;padding:0;list-style:none;font-size:12px;min-width:190px}
.empty{color:#718096;font-style:italic}
"""


def esc(value: Any) -> str:
    """Text for HTML (element content and quoted attributes alike)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True, default=str)
    return escape(value, quote=True)


def href(path: str, **params: Any) -> str:
    """A relative link with its query string, escaped for an attribute."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return esc(f"{path}?{query}" if query else path)


def badge(value: str) -> str:
    return f'<span class="badge {_BADGE.get(value, "unknown")}">{esc(value)}</span>'


def page(title: str, body: str, user: str | None = None) -> str:
    who = f"<span>Signed in as {esc(user)}</span>" if user else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{esc(title)}</h1>{who}</header><main>{body}</main></body></html>"
    )


def render_overview(
    runs: Sequence[RunView],
    *,
    dag_ids: Iterable[str],
    dag_filter: str | None,
    verdict_filter: str | None,
    user: str | None,
) -> str:
    """``GET /mlsecops/``: the latest runs of each DAG with their gates."""
    body = _filters(sorted(dag_ids), dag_filter, verdict_filter)
    if not runs:
        body += '<p class="empty">No gate results to show.</p>'
    for run in runs:
        link = href("run", dag_id=run.dag_id, run_id=run.run_id)
        title = f'{esc(run.dag_id)} · <a href="{link}">{esc(run.run_id)}</a>'
        body += _run_section(run, title, full=False)
    return page("Security gates", body, user)


def render_run(run: RunView, task_id: str | None, user: str | None) -> str:
    """``GET /mlsecops/run``: one run (or one task of it) with full findings and reports."""
    back = href("./", dag_id=run.dag_id)
    body = f'<p><a href="{back}">All runs of {esc(run.dag_id)}</a></p>'
    if task_id:
        body += f"<p>Task <code>{esc(task_id)}</code></p>"
    body += _run_section(run, f"{esc(run.dag_id)} · {esc(run.run_id)}", full=True)
    return page(f"Security gates: {run.dag_id}", body, user)


def render_error(status: int, message: str, login_url: str | None = None) -> str:
    login = f'<p><a href="{esc(login_url)}">Log in</a></p>' if login_url else ""
    return page("Security gates", f"<p>{esc(status)}: {esc(message)}</p>{login}")


def _filters(dag_ids: list[str], dag_filter: str | None, verdict_filter: str | None) -> str:
    dags = _options(["", *dag_ids], dag_filter, "all DAGs")
    verdicts = _options(["", *VERDICT_CHOICES], verdict_filter, "any verdict")
    return (
        '<form class="filters" method="get" action="./">'
        f'<label>DAG<select name="dag_id">{dags}</select></label>'
        f'<label>Verdict<select name="verdict">{verdicts}</select></label>'
        '<button type="submit">Filter</button></form>'
    )


def _options(values: list[str], selected: str | None, blank: str) -> str:
    return "".join(
        f'<option value="{esc(v)}"{" selected" if v == (selected or "") else ""}>'
        f"{esc(v or blank)}</option>"
        for v in values
    )


def _run_section(run: RunView, title: str, *, full: bool) -> str:
    meta = "".join(
        f"<span>{esc(label)}: {value}</span>"
        for label, value in (
            ("DAG", f"<code>{esc(run.dag_id)}</code>"),
            ("state", badge(run.state or "none")),
            ("run after", esc(run.run_after)),
            ("signature", _kv(run.signature()) or "—"),
        )
    )
    rows = "".join(_gate_row(g, full) for g in run.gates)
    table = (
        "<table><thead><tr><th>Task</th><th>Gate</th><th>Verdict</th><th>Integrity</th>"
        "<th>Message</th><th>Key metrics</th><th>Findings</th><th>Evidence</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if run.gates
        else '<p class="empty">No gates recorded in this run.</p>'
    )
    return (
        f'<section class="run"><h2>{title}</h2><div class="meta">{meta}</div>'
        f"{_promotion(run)}{table}</section>"
    )


def _promotion(run: RunView) -> str:
    gate = run.promotion
    if gate is None:
        return ""
    audit = run.audit()
    audit_html = f"<pre>{esc(json.dumps(audit, indent=2, default=str))}</pre>" if audit else ""
    uri, sha256 = gate.details.get("evidence_uri"), gate.details.get("evidence_sha256")
    record = ""
    if gate.integrity.value == "verified" and isinstance(uri, str) and isinstance(sha256, str):
        record = f' <a href="{href("evidence", uri=uri, sha256=sha256)}">signed record</a>'
    return (
        f'<div class="promotion"><strong>Promotion decision</strong> {badge(gate.verdict)} '
        f"{esc(gate.message)}{record}{audit_html}</div>"
    )


def _gate_row(gate: GateView, full: bool) -> str:
    metrics = gate.metrics if full else dict(list(gate.metrics.items())[:MAX_METRICS_OVERVIEW])
    message = esc(gate.message) or esc(gate.detail)
    cells = [
        f"<code>{esc(gate.task_id)}</code>"
        + (f"[{esc(gate.map_index)}]" if gate.map_index >= 0 else "")
        + f"<br>{badge(gate.task_state or 'none')}",
        esc(gate.gate),
        badge(gate.verdict),
        badge(gate.integrity.value),
        message,
        _kv(metrics),
        _findings(gate),
        _evidence(gate),
    ]
    classes = ["", "", "", "", ' class="wrap msg"', "", "", ' class="wrap"']
    row = (
        "<tr>" + "".join(f"<td{k}>{c}</td>" for k, c in zip(classes, cells, strict=True)) + "</tr>"
    )
    if full and gate.details:
        text = json.dumps(gate.details, indent=2, sort_keys=True, default=str)
        cut = "\n… (truncated: open the evidence report)" if len(text) > MAX_DETAILS_CHARS else ""
        row += (
            f'<tr><td colspan="8"><details><summary>Report details: {esc(gate.gate)}</summary>'
            f"<pre>{esc(text[:MAX_DETAILS_CHARS] + cut)}</pre></details></td></tr>"
        )
    return row


def _kv(values: Mapping[str, Any]) -> str:
    if not values:
        return ""
    items = "".join(f"<li><code>{esc(k)}</code> = {esc(v)}</li>" for k, v in values.items())
    return f'<ul class="kv">{items}</ul>'


def _findings(gate: GateView) -> str:
    if not gate.findings:
        return "" if gate.findings_total == 0 else esc(f"{gate.findings_total} findings")
    columns: list[str] = []
    for finding in gate.findings:
        columns.extend(k for k in finding if k not in columns)
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(f.get(c))}</td>" for c in columns) + "</tr>"
        for f in gate.findings
    )
    more = gate.findings_total - len(gate.findings)
    note = f"<div>… {esc(more)} more in the report</div>" if more > 0 else ""
    return f'<div class="scroll"><table class="findings"><tr>{head}</tr>{body}</table></div>{note}'


def _evidence(gate: GateView) -> str:
    if not gate.evidence_uri:
        return ""
    name = gate.evidence_uri.rstrip("/").rsplit("/", 1)[-1]
    if not gate.evidence_sha256 or gate.integrity.value != "verified":
        return f"<code>{esc(name)}</code>"
    link = href("evidence", uri=gate.evidence_uri, sha256=gate.evidence_sha256)
    short = esc(gate.evidence_sha256[:12])
    anchor = f'<a href="{link}" title="{esc(gate.evidence_uri)}">{esc(name)}</a>'
    return f"{anchor}<br><code>{short}…</code>"
