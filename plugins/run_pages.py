"""HTML of one DAG run: the pipeline, the promotion decision in words, the comparisons, the
pictures and the gates in DAG order. Escaped throughout (see :mod:`.gate_pages`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlsecops_provider.plugins.gate_data import RunView
from mlsecops_provider.plugins.gate_pages import badge, esc, href, num, page, run_section
from mlsecops_provider.plugins.pictures import gate_pictures
from mlsecops_provider.plugins.run_details import Decision, comparisons
from mlsecops_provider.plugins.serving_log import Windows

_OK = {"verified", "intact"}
NUM_CELL = ' class="num"'


def render_run(
    run: RunView,
    task_id: str | None,
    user: str | None,
    decision: Decision | None = None,
    log_windows: Windows | None = None,
) -> str:
    """``GET /mlsecops/run``: one run (or one task of it) with full findings and reports."""
    back = href("./", dag_id=run.dag_id)
    body = (
        f'<p><a href="{back}">All runs of {esc(run.dag_id)}</a> · <a href="models">Models</a></p>'
    )
    if task_id:
        body += f"<p>Task <code>{esc(task_id)}</code></p>"
    above = (
        pipeline(run)
        + (decision_html(decision) if decision else "")
        + comparison_table(run)
        + pictures(run, log_windows)
        + ("<h3>Gates in pipeline order</h3>" if run.gates else "")
    )
    body += run_section(run, f"{esc(run.dag_id)} · {esc(run.run_id)}", full=True, above_table=above)
    return page(f"Security gates: {run.dag_id}", body, user)


def pipeline(run: RunView) -> str:
    """The run's tasks in DAG order with their states; gate tasks outlined."""
    if not run.pipeline:
        return ""
    steps = []
    for step in run.pipeline:
        gate = step.get("gate")
        css = ' class="gate"' if gate else ""
        verdict = f" {badge(str(step.get('verdict')))}" if gate else ""
        steps.append(
            f"<span{css}><code>{esc(step['task_id'])}</code> "
            f"{badge(str(step.get('state') or 'none'))}{verdict}</span>"
        )
    return '<nav class="pipeline" aria-label="Pipeline">' + "<i>→</i>".join(steps) + "</nav>"


def _v(version: Any) -> str:
    return f"v{esc(version)}" if version else "none"


def decision_html(decision: Decision) -> str:
    """The promotion decision in words, the record and the audit entry as facts."""
    if decision.state == "unverified":
        why = "; ".join(decision.reasons)
        return (
            '<div class="decision refused"><strong>Promotion decision</strong> '
            f"{badge('unverified')} <p>The promotion report could not be verified: {esc(why)}</p>"
            "</div>"
        )
    model = f"<strong>{esc(decision.model)} {_v(decision.version)}</strong>"
    alias = f"@{esc(decision.alias or 'champion')}"
    record = decision.record
    when = f"on {esc(record['at'])}" if record.get("at") else "at an unrecorded time"
    if decision.state == "promoted":
        previous = (
            f"replacing {_v(decision.previous)}" if decision.previous else "the first champion"
        )
        said = f"{model} was promoted to {alias} {when}, {previous}."
    else:
        stays = _v(decision.previous) if decision.previous else "unset"
        state = f"<strong>{esc(decision.state)}</strong>"
        said = f"Promotion of {model} to {alias} was {state}; {alias} stays {stays}."
    reasons = "".join(f"<li>{esc(r)}</li>" for r in decision.reasons)
    css = "decision" if decision.state == "promoted" else "decision refused"
    return (
        f'<div class="{css}"><strong>Promotion decision</strong> {badge(decision.state)}'
        f"<p>{said}</p>{f'<ul>{reasons}</ul>' if reasons else ''}"
        f'<dl class="facts">{_signature_facts(decision)}{_approval_fact(decision.approval)}'
        f"{_audit_facts(decision.audit)}</dl></div>"
    )


def _status(value: Any) -> str:
    text = str(value or "none")
    return badge("verified" if text in _OK else ("unverified" if text == "not checked" else "fail"))


def _signature_facts(decision: Decision) -> str:
    record = decision.record
    key = f"<code>{esc((decision.key_id or '')[:16])}…</code>" if decision.key_id else "—"
    facts = f"<dt>Signed by key</dt><dd>{key}</dd>"
    if record:
        link = href("evidence", uri=record.get("uri"), sha256=record.get("sha256"))
        status = "" if record.get("status") == "verified" else esc(record.get("status"))
        problem = f" — {esc(record['problem'])}" if record.get("problem") else ""
        facts += (
            f'<dt>Signed record</dt><dd><a href="{link}">promotion.dsse.json</a> '
            f"{_status(record.get('status'))} {status}{problem}</dd>"
        )
    if decision.model_sha256:
        facts += f"<dt>Model SHA-256</dt><dd><code>{esc(decision.model_sha256)}</code></dd>"
    return facts


def _approval_fact(approval: Mapping[str, Any] | None) -> str:
    if not approval:
        return "<dt>Approval</dt><dd>none recorded (not required by the policy)</dd>"
    verb = "approved" if approval.get("approved") else "rejected"
    comment = f" — “{esc(approval['comment'])}”" if approval.get("comment") else ""
    return (
        f"<dt>Approval</dt><dd>{esc(verb)} by {esc(approval.get('by') or 'unknown')} "
        f"on {esc(approval.get('at') or 'an unrecorded time')}{comment}</dd>"
    )


def _audit_facts(audit: Mapping[str, Any]) -> str:
    if not audit:
        return "<dt>Audit entry</dt><dd>none recorded</dd>"
    digest = esc(str(audit.get("hash") or "")[:16])
    chain = f"chain {esc(audit.get('status'))}"
    if audit.get("entries"):
        chain += f", {esc(audit['entries'])} entries"
    if audit.get("problem"):
        chain += f" — {esc(audit['problem'])}"
    when = esc(audit.get("time") or "?")
    head = f"#{esc(audit.get('seq'))} {esc(audit.get('kind') or '')} at {when}"
    head += f", hash <code>{digest}…</code>"
    raw = audit.get("details")
    details: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    shown = {
        k: v
        for k, v in details.items()
        if k
        in ("registered_model", "version", "alias", "previous_version", "champion", "invocation")
    }
    extra = "".join(f"<br><code>{esc(k)}</code>: {esc(v)}" for k, v in shown.items())
    return f"<dt>Audit entry</dt><dd>{head} {_status(audit.get('status'))} {chain}{extra}</dd>"


def comparison_table(run: RunView) -> str:
    """Candidate vs champion, side by side, for every metric the gates compared."""
    rows = comparisons(run)
    if not rows:
        return ""
    body = "".join(_comparison_row(r) for r in rows)
    return (
        '<h3>Candidate vs champion</h3><table class="compare"><thead><tr><th>Gate</th>'
        "<th>Metric</th><th>Candidate</th><th>Champion</th><th>Change</th><th>Interval</th>"
        f"</tr></thead><tbody>{body}</tbody></table>"
    )


def _comparison_row(row: Mapping[str, Any]) -> str:
    from mlsecops_provider.plugins.charts import number, short

    delta = number(row.get("delta"))
    better = row.get("higher_is_better")
    css = ""
    if delta not in (None, 0.0) and better is not None:
        css = ' class="num better"' if (delta > 0) == better else ' class="num worse"'
    change = esc(short(delta, signed=True)) if delta is not None else "—"
    relative = number(row.get("relative"))
    if relative is not None:
        change += f" ({esc(f'{relative:+.1%}')})"
    interval = row.get("delta_ci")
    ci = "—"
    if isinstance(interval, list | tuple) and len(interval) == 2:
        low, high = number(interval[0]), number(interval[1])
        if low is not None and high is not None:
            ci = f"[{esc(short(low, signed=True))}, {esc(short(high, signed=True))}]"
    return (
        f"<tr><td>{esc(row.get('gate'))}</td><td><code>{esc(row.get('metric'))}</code></td>"
        f'<td class="num">{num(row.get("candidate"))}</td>'
        f'<td class="num">{num(row.get("champion"))}</td><td{css or NUM_CELL}>{change}</td>'
        f'<td class="num">{ci}</td></tr>'
    )


def pictures(run: RunView, log_windows: Windows | None = None) -> str:
    """Every gate's pictures, under the gate's name."""
    parts = []
    for gate in run.gates:
        figures = gate_pictures(gate, log_windows)
        if figures:
            parts.append(f'<h3>{esc(gate.gate)}</h3><div class="pictures">{"".join(figures)}</div>')
    return "".join(parts)
