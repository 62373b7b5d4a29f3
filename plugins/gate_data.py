"""What the gate review shows: DAG runs and their gates, each verified (:mod:`.gate_evidence`).

Gate tasks are found in the Airflow metadata DB by the XComs ``record_gate`` leaves: the
*Evidence report* link and the gate summary (``return_value``, or a dedicated
``mlsecops_gate`` key when the task pushes one); :func:`collect_runs` verifies each one's
report and lays the runs out for the pages and the API.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mlsecops_provider.core.evidence import MAX_SUMMARY_FINDINGS, EvidenceStore
from mlsecops_provider.plugins.gate_evidence import (
    LINK_KEY,
    SUMMARY_KEYS,
    GateView,
    Integrity,
    verify_gate,
)

PROMOTION_GATE = "promotion"
SIGNATURE_KEY = re.compile(r"signature|signed|signing", re.IGNORECASE)
AUDIT_KEY = re.compile(r"audit", re.IGNORECASE)


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
