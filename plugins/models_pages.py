"""HTML of the model inventory (``GET /mlsecops/models``), escaped throughout (see
:mod:`.gate_pages`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlsecops_provider.plugins.gate_pages import badge, esc, href, page
from mlsecops_provider.plugins.inventory import AliasView, ModelView


def render_models(models: Sequence[ModelView], user: str | None, audit_problem: str = "") -> str:
    body = (
        '<p><a href="./">Security gates</a> · <a href="models?refresh=1">Re-check now</a> · '
        '<a href="api/models">JSON</a></p>'
    )
    if audit_problem:
        body += f'<p class="decision refused">Audit log: {esc(audit_problem)}</p>'
    if not models:
        body += '<p class="empty">No registered model you may see.</p>'
    body += "".join(_model(m) for m in models)
    return page("Model inventory", body, user)


def _model(model: ModelView) -> str:
    description = f"<span>{esc(model.description)}</span>" if model.description else ""
    meta = (
        f'<div class="meta"><span>DAG: <code>{esc(model.dag_id)}</code></span>{description}</div>'
    )
    return (
        f'<section class="run model"><h2>{esc(model.name)}</h2>{meta}'
        f"{_aliases(model.aliases)}{_alerts(model.alerts)}{_last_run(model.last_run)}"
        f"{_versions(model)}{_audit(model.audit)}</section>"
    )


def _aliases(aliases: Sequence[AliasView]) -> str:
    if not aliases:
        return '<p class="empty">No alias set on a version you may see.</p>'
    rows = "".join(
        "<tr>"
        f"<td><code>@{esc(a.alias)}</code></td><td>v{esc(a.version)}</td>"
        f"<td>{badge('verified' if a.verified else 'not verified')}</td>"
        f'<td class="wrap msg">{"" if a.verified else esc(a.reason)}</td>'
        f"<td>{_key(a.key_id)}</td><td>{_record(a)}</td><td>{esc(a.checked_at)}</td>"
        "</tr>"
        for a in aliases
    )
    return (
        '<h3>Aliases</h3><table class="aliases"><thead><tr><th>Alias</th><th>Version</th>'
        "<th>verify-promotion</th><th>Reason</th><th>Signed by</th><th>Signed record</th>"
        f"<th>Checked at</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _key(key_id: str | None) -> str:
    return f"<code>{esc(key_id[:12])}…</code>" if key_id else "—"


def _record(alias: AliasView) -> str:
    if not alias.record_uri or not alias.record_sha256:
        return "—"
    link = href("evidence", uri=alias.record_uri, sha256=alias.record_sha256)
    return f'<a href="{link}">promotion.dsse.json</a>'


def _alerts(alerts: Sequence[str]) -> str:
    if not alerts:
        return '<p>Open alerts: <span class="empty">none</span></p>'
    items = "".join(f"<li>{badge('warn')} {esc(a)}</li>" for a in alerts)
    return f'<h3>Open alerts</h3><ul class="alerts">{items}</ul>'


def _last_run(run: Any) -> str:
    if run is None:
        return ""
    link = href("run", dag_id=run.dag_id, run_id=run.run_id)
    gates = " ".join(
        f"<span><code>{esc(g.gate)}</code> {badge(g.verdict)}</span>" for g in run.gates
    )
    return (
        f'<h3>Last run</h3><p><a href="{link}">{esc(run.run_id)}</a> {badge(run.state or "none")}'
        f'</p><nav class="pipeline">{gates or "<span class=empty>no gates</span>"}</nav>'
    )


def _versions(model: ModelView) -> str:
    rows = "".join(
        "<tr>"
        f"<td>v{esc(v.version)}</td><td>{esc(v.created)}</td>"
        f"<td>{' '.join(f'<code>@{esc(a)}</code>' for a in v.aliases)}</td>"
        f"<td>{_run_link(v.dag_id, v.run_id)}</td>"
        f"<td>{' '.join(f'{esc(g)} {badge(verdict)}' for g, verdict in v.gates.items())}</td>"
        "</tr>"
        for v in model.versions
    )
    return (
        "<h3>Versions</h3><table><thead><tr><th>Version</th><th>Registered</th><th>Aliases</th>"
        f"<th>DAG run</th><th>Gates at registration</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _run_link(dag_id: str | None, run_id: str | None) -> str:
    if not dag_id or not run_id:
        return "—"
    return f'<a href="{href("run", dag_id=dag_id, run_id=run_id)}">{esc(run_id)}</a>'


def _audit(entries: Sequence[dict[str, Any]]) -> str:
    if not entries:
        return ""
    rows = "".join(
        "<tr>"
        f"<td>#{esc(e['seq'])}</td><td>{esc(e['time'])}</td><td>{badge(e['kind'])}</td>"
        f"<td>{'v' + esc(e['version']) if e.get('version') else '—'}</td>"
        f"<td>{'@' + esc(e['alias']) if e.get('alias') else ''}</td>"
        f"<td><code>{esc(str(e['hash'])[:12])}…</code></td>"
        f"<td>{_run_link(e.get('dag_id'), e.get('run_id'))}</td>"
        "</tr>"
        for e in entries
    )
    return (
        "<h3>Audit entries</h3><table><thead><tr><th>Entry</th><th>Time</th><th>Kind</th>"
        "<th>Version</th><th>Alias</th><th>Hash</th><th>Decision</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
