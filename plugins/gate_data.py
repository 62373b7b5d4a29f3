"""What the gate review shows: DAG runs, their gates and the verified evidence behind them.

Gate tasks are found in the Airflow metadata DB by the XComs ``record_gate`` leaves: the
*Evidence report* link (``_link_EvidenceLink``) and the gate summary (``return_value``, or a
dedicated ``mlsecops_gate`` key when the task pushes one). Every summary points at its report
by URI + SHA-256; the report is read back through :meth:`EvidenceStore.read_report`, so a
report whose bytes changed shows as ``tampered``, never as the verdict it claims. Only
reports under the configured evidence store, in the folder of their own DAG, are read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from mlsecops_provider.core.errors import (
    DataError,
    DigestMismatchError,
    NotFoundError,
    StorageError,
)
from mlsecops_provider.core.evidence import (
    MAX_SUMMARY_FINDINGS,
    EvidenceStore,
    GateResult,
    evidence_segment,
)

log = logging.getLogger(__name__)
LINK_KEY = "_link_EvidenceLink"  # operators._runtime.EVIDENCE_LINK_KEY
SUMMARY_KEYS = ("mlsecops_gate", "return_value")  # a dedicated key wins over return_value
EVIDENCE_ROUTE = "/mlsecops/evidence"
PROMOTION_GATE = "promotion"
SIGNATURE_KEY = re.compile(r"signature|signed|signing", re.IGNORECASE)
AUDIT_KEY = re.compile(r"audit", re.IGNORECASE)
NO_DIGEST = "no report digest recorded (the task ended before returning its summary)"
_SEGMENT = re.compile(r"[A-Za-z0-9_=-][A-Za-z0-9._=-]*")  # as core.evidence.evidence_segment


class Integrity(StrEnum):
    """What reading a gate's report back found."""

    VERIFIED = "verified"
    TAMPERED = "tampered"  # digest mismatch, or the report disagrees with the summary
    MISSING = "missing"  # no object at the URI
    UNREADABLE = "unreadable"  # outside the store, not a report, or the store failed
    UNVERIFIED = "unverified"  # no digest was recorded (e.g. the task failed first)


VERDICT_CHOICES = ("pass", "warn", "fail", "error", *[i.value for i in Integrity][1:])


@dataclass(frozen=True)
class GateView:
    """One gate task of one DAG run, as the reviewer sees it."""

    task_id: str
    map_index: int
    task_state: str | None
    gate: str
    verdict: str  # the report's verdict when verified, else the integrity state
    integrity: Integrity
    detail: str = ""
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    findings_total: int = 0
    evidence_uri: str | None = None
    evidence_sha256: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    subjects: dict[str, Any] = field(default_factory=dict)  # what the verified report checked

    def to_dict(self, with_details: bool = False) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "details"}
        data["integrity"] = self.integrity.value
        if with_details:
            data["details"] = self.details
        return data


@dataclass(frozen=True)
class RunView:
    """One DAG run and its gates."""

    dag_id: str
    run_id: str
    state: str | None
    run_after: str | None
    start_date: str | None
    end_date: str | None
    gates: list[GateView]
    pipeline: list[dict[str, Any]] = field(default_factory=list)  # tasks in DAG order

    @property
    def promotion(self) -> GateView | None:
        return next((g for g in self.gates if g.gate == PROMOTION_GATE), None)

    def signature(self) -> dict[str, Any]:
        """Signature status: the promotion gate's (a pass means signed and verified with the
        pinned keys) plus signature metrics of any verified gate (``gate.metric``)."""
        found = {
            f"{g.gate}.{key}": value
            for g in self.gates
            if g.integrity is Integrity.VERIFIED
            for key, value in g.metrics.items()
            if SIGNATURE_KEY.search(key)
        }
        promotion = self.promotion
        if promotion is None:
            return found
        details = promotion.details if promotion.integrity is Integrity.VERIFIED else {}
        signed = bool(details.get("key_id") or details.get("evidence_uri"))
        if signed:
            found["status"] = "verified" if promotion.verdict == "pass" else "not verified"
        else:
            found["status"] = "not signed" if details else promotion.verdict
        if details.get("key_id"):
            found["key_id"] = details["key_id"]
        return found

    def audit(self) -> dict[str, Any]:
        """The promotion gate's audit entry (details keys naming an audit), when verified."""
        promotion = self.promotion
        if promotion is None or promotion.integrity is not Integrity.VERIFIED:
            return {}
        return {k: v for k, v in promotion.details.items() if AUDIT_KEY.search(k)}

    def to_dict(self, with_details: bool = False) -> dict[str, Any]:
        promotion = self.promotion
        decision = None
        if promotion is not None:
            decision = {"verdict": promotion.verdict, "message": promotion.message}
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "state": self.state,
            "run_after": self.run_after,
            "start_date": self.start_date,
            "end_date": self.end_date,
            "signature": self.signature(),
            "promotion": decision and {**decision, "audit": self.audit()},
            "pipeline": self.pipeline,
            "gates": [g.to_dict(with_details) for g in self.gates],
        }


def evidence_dag_segment(root_uri: str, uri: str) -> str:
    """The DAG folder of an evidence URI; ``ValueError`` unless it is safely under the root.

    Evidence URIs are ``<root>/<dag>/<run>/<gate>/<name>`` made of :func:`evidence_segment`
    parts (an injective escape: no two DAG ids share a folder, no segment starts with a
    dot), so anything else (``..``, ``%``-escapes, query strings, another root) is refused.
    The message names only what the client sent.
    """
    prefix = root_uri.rstrip("/") + "/"
    if not uri.startswith(prefix):
        raise ValueError(f"{uri}: not an evidence path of this store")
    segments = uri[len(prefix) :].split("/")
    if len(segments) < 2 or not all(_SEGMENT.fullmatch(s) for s in segments):
        raise ValueError(f"{uri}: not an evidence path")
    return segments[0]


def dag_for_segment(segment: str, dag_ids: Iterable[str]) -> str | None:
    """The DAG (among ``dag_ids``) whose evidence folder is ``segment``."""
    return next((d for d in sorted(dag_ids) if _safe(d) == segment), None)


def _safe(value: str) -> str | None:
    try:
        return evidence_segment(value)
    except ValueError:
        return None


def gate_dag_ids(session: Any) -> set[str]:
    """DAGs of which some task recorded a gate (pushed the evidence link)."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    stmt = select(XComModel.dag_id).where(XComModel.key == LINK_KEY).distinct()
    return set(session.scalars(stmt))


def latest_runs(
    session: Any, dag_ids: Iterable[str], per_dag: int, run_id: str | None = None
) -> list[Any]:
    """The newest ``per_dag`` runs of each DAG (or the one run named), newest first."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    runs: list[Any] = []
    for dag_id in sorted(dag_ids):
        stmt = select(DagRun).where(DagRun.dag_id == dag_id)
        if run_id is not None:
            stmt = stmt.where(DagRun.run_id == run_id)
        stmt = stmt.order_by(DagRun.run_after.desc(), DagRun.id.desc()).limit(per_dag)
        runs.extend(session.scalars(stmt))
    return sorted(runs, key=lambda r: (str(r.run_after), r.id), reverse=True)


def collect_runs(
    session: Any,
    store: EvidenceStore,
    dag_runs: list[Any],
    *,
    task_id: str | None = None,
    with_details: bool = False,
    task_order: Callable[[Any], list[str]] | None = None,
) -> list[RunView]:
    """Each run with its gates, every report verified against its digest.

    With ``task_order`` (a run -> its DAG's task ids in topological order) the gates follow
    the pipeline and the run lists all its tasks in that order; else they sort by task id.
    """
    xcoms = _gate_xcoms(session, [r.id for r in dag_runs], task_id)
    states = _task_states(session, dag_runs, None if task_order else task_id)
    tasks: dict[int, list[tuple[str, int]]] = {}
    for run_pk, tid, map_index in xcoms:
        tasks.setdefault(run_pk, []).append((tid, map_index))
    views = []
    for run in dag_runs:
        order = task_order(run) if task_order else []
        rank = {tid: i for i, tid in enumerate(order)}
        ordered = sorted(tasks.get(run.id, []), key=lambda t: (rank.get(t[0], len(rank)), t))
        run_states = states.get(run.id, {})
        gates = [
            verify_gate(store, run.dag_id, t, xcoms[(run.id, *t)], run_states) for t in ordered
        ]
        if not with_details:
            gates = [_compact(g) for g in gates]
        views.append(
            RunView(
                dag_id=run.dag_id,
                run_id=run.run_id,
                state=_str(run.state),
                run_after=_iso(run.run_after),
                start_date=_iso(run.start_date),
                end_date=_iso(run.end_date),
                gates=gates,
                pipeline=_pipeline(order, run_states, gates),
            )
        )
    return views


def _pipeline(
    order: list[str], states: Mapping[tuple[str, int], str | None], gates: list[GateView]
) -> list[dict[str, Any]]:
    """``[{task_id, state, gate, verdict}]`` for every task of the run, in DAG order."""
    by_task: dict[str, GateView] = {g.task_id: g for g in gates}
    task_states: dict[str, str | None] = {}
    for (tid, _), state in sorted(states.items(), key=lambda item: item[0][1]):
        task_states.setdefault(tid, state)  # the unmapped (-1) or first mapped instance
    return [
        {
            "task_id": tid,
            "state": task_states.get(tid),
            "gate": by_task[tid].gate if tid in by_task else None,
            "verdict": by_task[tid].verdict if tid in by_task else None,
        }
        for tid in order
    ]


def _compact(gate: GateView) -> GateView:
    """The overview's form: at most ten findings, details only for the promotion gate."""
    details = gate.details if gate.gate == PROMOTION_GATE else {}
    return replace(gate, findings=gate.findings[:MAX_SUMMARY_FINDINGS], details=details)


def _gate_xcoms(
    session: Any, dag_run_ids: list[int], task_id: str | None
) -> dict[tuple[int, str, int], dict[str, Any]]:
    """``{(dag_run_id, task_id, map_index): {key: value}}`` of the gate tasks."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    if not dag_run_ids:
        return {}
    stmt = select(XComModel).where(
        XComModel.dag_run_id.in_(dag_run_ids), XComModel.key.in_((LINK_KEY, *SUMMARY_KEYS))
    )
    if task_id is not None:
        stmt = stmt.where(XComModel.task_id == task_id)
    found: dict[tuple[int, str, int], dict[str, Any]] = {}
    for row in session.scalars(stmt):
        value = XComModel.deserialize_value(row)
        if row.key != LINK_KEY and not _looks_like_summary(value):
            continue
        found.setdefault((row.dag_run_id, row.task_id, row.map_index), {})[row.key] = value
    return found


def _looks_like_summary(value: Any) -> bool:
    return isinstance(value, Mapping) and {"gate", "verdict", "evidence_uri"} <= set(value)


def _task_states(
    session: Any, dag_runs: list[Any], task_id: str | None
) -> dict[int, dict[tuple[str, int], str | None]]:
    """``{dag_run_id: {(task_id, map_index): state}}``."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from sqlalchemy import and_, select

    join = and_(DagRun.dag_id == TI.dag_id, DagRun.run_id == TI.run_id)
    stmt = select(DagRun.id, TI.task_id, TI.map_index, TI.state).join(DagRun, join)
    stmt = stmt.where(DagRun.id.in_([r.id for r in dag_runs]))
    if task_id is not None:
        stmt = stmt.where(TI.task_id == task_id)
    states: dict[int, dict[tuple[str, int], str | None]] = {}
    for run_pk, tid, map_index, state in session.execute(stmt):
        states.setdefault(run_pk, {})[(tid, map_index)] = _str(state)
    return states


def verify_gate(
    store: EvidenceStore,
    dag_id: str,
    task: tuple[str, int],
    xcoms: Mapping[str, Any],
    states: Mapping[tuple[str, int], str | None],
) -> GateView:
    """Read the gate's report back and check it against the summary the task returned."""
    summary = next((xcoms[k] for k in SUMMARY_KEYS if k in xcoms), None)
    uri, sha256 = parse_evidence_link(xcoms.get(LINK_KEY))
    if summary:
        uri, sha256 = summary.get("evidence_uri"), summary.get("evidence_sha256")
    base = GateView(
        task_id=task[0],
        map_index=task[1],
        task_state=states.get(task),
        gate=str(summary.get("gate")) if summary else _gate_from_uri(uri) or task[0],
        verdict=Integrity.UNVERIFIED.value,
        integrity=Integrity.UNVERIFIED,
        evidence_uri=str(uri) if uri else None,
        evidence_sha256=str(sha256) if sha256 else None,
    )
    if not uri or not sha256:
        return replace(base, detail=NO_DIGEST)
    try:
        if evidence_dag_segment(store.root_uri, str(uri)) != _safe(dag_id):
            raise ValueError(f"{uri}: not in the evidence folder of DAG {dag_id}")
        result, details = store.read_report(str(uri), str(sha256))
    except (ValueError, DigestMismatchError, NotFoundError, StorageError, DataError) as err:
        return _unverified(base, err)
    claimed = (summary.get("gate"), summary.get("verdict")) if summary else (base.gate, None)
    if result.gate != claimed[0] or claimed[1] not in (None, result.verdict.value):
        said = f"{result.gate}={result.verdict.value}"
        return _flagged(base, Integrity.TAMPERED, f"{uri}: report says {said}, task said {claimed}")
    return _verified(base, result, details)


def _unverified(base: GateView, err: Exception) -> GateView:
    if isinstance(err, DigestMismatchError):
        return _flagged(base, Integrity.TAMPERED, str(err))
    if isinstance(err, NotFoundError):
        return _flagged(base, Integrity.MISSING, str(err))
    return _flagged(base, Integrity.UNREADABLE, str(err))


def _flagged(base: GateView, integrity: Integrity, detail: str) -> GateView:
    log.warning("gate %s of task %s: %s (%s)", base.gate, base.task_id, integrity.value, detail)
    return replace(base, verdict=integrity.value, integrity=integrity, detail=detail)


def _verified(base: GateView, result: GateResult, details: dict[str, Any]) -> GateView:
    summary = result.summary()
    return replace(
        base,
        verdict=result.verdict.value,
        integrity=Integrity.VERIFIED,
        message=result.message,
        metrics=summary["metrics"],
        findings=list(result.findings),
        findings_total=len(result.findings),
        details=details,
        subjects=dict(result.subjects),
    )


def evidence_url(uri: str, sha256: str, base_url: str = "") -> str:
    """The gate review's link to a report: ``<base_url>/mlsecops/evidence?uri=…&sha256=…``."""
    from urllib.parse import urlencode

    query = urlencode({"uri": uri, "sha256": sha256})
    return f"{base_url.rstrip('/')}{EVIDENCE_ROUTE}?{query}"


def parse_evidence_link(value: Any) -> tuple[str | None, str | None]:
    """``(uri, sha256)`` of an evidence link XCom: a report URI, or an :func:`evidence_url`."""
    from urllib.parse import parse_qs, urlsplit

    if not isinstance(value, str) or not value:
        return None, None
    parts = urlsplit(value)
    if not parts.path.endswith(EVIDENCE_ROUTE):
        return value, None
    query = parse_qs(parts.query)
    return query.get("uri", [""])[0] or None, query.get("sha256", [""])[0] or None


def _gate_from_uri(uri: Any) -> str | None:
    parts = str(uri).rstrip("/").split("/") if uri else []
    return parts[-2] if len(parts) >= 2 else None


def filter_verdict(runs: list[RunView], verdict: str | None) -> list[RunView]:
    """Keep the gates with that (displayed) verdict, and the runs that have one."""
    if not verdict:
        return runs
    kept = [replace(r, gates=[g for g in r.gates if g.verdict == verdict]) for r in runs]
    return [r for r in kept if r.gates]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _str(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))
