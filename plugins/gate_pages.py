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

from mlsecops_provider.plugins.gate_data import RunView
from mlsecops_provider.plugins.gate_evidence import VERDICT_CHOICES, GateView

MAX_DETAIL_ITEMS = 600
MAX_DETAIL_DEPTH = 6
MAX_INLINE_LIST = 20
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
    "not verified": "bad",
    "promoted": "ok",
    "refused": "bad",
    "promotion": "ok",
    "refusal": "bad",
    "rollback": "warn",
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
.tree .kv .kv{padding-left:16px;border-left:1px solid #edf2f7}
.empty{color:#718096;font-style:italic}
.num{font-variant-numeric:tabular-nums}
nav.pipeline{display:flex;flex-wrap:wrap;gap:4px;margin:8px 0 12px;font-size:12px}
nav.pipeline span{border:1px solid #cbd5e0;border-radius:4px;padding:2px 6px;background:#fff}
nav.pipeline span.gate{border-color:#017cee}nav.pipeline i{color:#a0aec0;font-style:normal}
.decision{background:#fff;border:1px solid #e2e8f0;border-left:4px solid #017cee;
  border-radius:6px;padding:10px 14px;margin-bottom:14px}
.decision.refused{border-left-color:#c53030}.decision p{margin:4px 0}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:6px 0;
  font-size:12px}dl.facts dt{color:#4a5568}dl.facts dd{margin:0;overflow-wrap:anywhere}
table.compare{width:auto;margin:6px 0 14px}table.compare td.num{text-align:right}
.better{color:#22543d}.worse{color:#822727}
.pictures{display:flex;flex-wrap:wrap;gap:16px;margin:8px 0 14px}
figure.chart{margin:0;background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:8px}
figure.chart figcaption{font-size:11px;color:#4a5568;max-width:700px}
h3{font-size:14px;margin:14px 0 4px}
"""


def esc(value: Any) -> str:
    """Text for HTML (element content and quoted attributes alike)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True, default=str)
    return escape(value, quote=True)


def num(value: Any) -> str:
    """A value for people: numbers rounded (the full value in the tooltip), the rest escaped."""
    from mlsecops_provider.plugins.charts import number, short

    parsed = number(value)
    if parsed is None:
        return esc(value)
    text = f"{value:,}" if isinstance(value, int) else short(parsed)
    if text == str(value):
        return f'<span class="num">{esc(text)}</span>'
    return f'<span class="num" title="{esc(repr(value))}">{esc(text)}</span>'


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
    body = '<p><a href="models">Model inventory</a></p>'
    body += _filters(sorted(dag_ids), dag_filter, verdict_filter)
    if not runs:
        body += '<p class="empty">No gate results to show.</p>'
    for run in runs:
        link = href("run", dag_id=run.dag_id, run_id=run.run_id)
        title = f'{esc(run.dag_id)} · <a href="{link}">{esc(run.run_id)}</a>'
        body += run_section(run, title, full=False)
    return page("Security gates", body, user)


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


def run_section(run: RunView, title: str, *, full: bool, above_table: str | None = None) -> str:
    """A run: its meta line, then ``above_table`` (default: the promotion line), the gates."""
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
        f"{_promotion(run) if above_table is None else above_table}{table}</section>"
    )


def _promotion(run: RunView) -> str:
    gate = run.promotion
    if gate is None:
        return ""
    audit = run.audit().get("audit")
    audit_html = ""
    if isinstance(audit, Mapping) and audit.get("seq") is not None:
        digest = str(audit.get("hash") or "")[:12]
        audit_html = f" · audit entry #{esc(audit['seq'])} <code>{esc(digest)}…</code>"
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
        budget = [MAX_DETAIL_ITEMS]
        tree = _tree(gate.details, 0, budget)
        cut = '<p class="empty">… more in the evidence report</p>' if budget[0] <= 0 else ""
        row += (
            f'<tr><td colspan="8"><details><summary>Report details: {esc(gate.gate)}</summary>'
            f'<div class="tree">{tree}{cut}</div></details></td></tr>'
        )
    return row


def _tree(value: Any, depth: int, budget: list[int]) -> str:
    """A report's details as nested lists, numbers rounded; at most ``budget`` items."""
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list | tuple) and any(isinstance(v, Mapping | list) for v in value):
        items = [(f"[{i}]", v) for i, v in enumerate(value)]
    elif isinstance(value, list | tuple):
        return (
            "["
            + ", ".join(num(v) for v in value[:MAX_INLINE_LIST])
            + (", …]" if len(value) > MAX_INLINE_LIST else "]")
        )
    else:
        return num(value)
    if depth >= MAX_DETAIL_DEPTH:
        return '<span class="empty">… (in the evidence report)</span>'
    parts = []
    for key, item in items:
        if budget[0] <= 0:
            break
        budget[0] -= 1
        parts.append(f"<li><code>{esc(key)}</code>: {_tree(item, depth + 1, budget)}</li>")
    return f'<ul class="kv">{"".join(parts)}</ul>'


def _kv(values: Mapping[str, Any]) -> str:
    if not values:
        return ""
    items = "".join(f"<li><code>{esc(k)}</code> = {num(v)}</li>" for k, v in values.items())
    return f'<ul class="kv">{items}</ul>'


def _findings(gate: GateView) -> str:
    if not gate.findings:
        return "" if gate.findings_total == 0 else esc(f"{gate.findings_total} findings")
    columns: list[str] = []
    for finding in gate.findings:
        columns.extend(k for k in finding if k not in columns)
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{num(f.get(c))}</td>" for c in columns) + "</tr>"
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
