"""What the run page adds to a run's gates: pipeline order, the promotion decision, comparisons.

- :func:`task_order`: the run's tasks in the DAG's topological order (the serialized DAG of
  the version the run ran with), task groups flattened in place;
- :func:`promotion_decision`: the promotion gate's verified report put in words — the signed
  record (read back by digest; its DSSE signature checked with the policy's pinned keys) gives
  the approval and the time, the audit log (chain verified) gives the entry the gate wrote;
- :func:`comparisons`: candidate vs champion for every metric a verified gate compared
  (the shadow evaluation's estimates with their intervals, else ``candidate.*``/``champion.*``
  metrics).

Nothing here trusts what it reads: a record or audit entry outside the evidence store, with
another digest, or on a broken chain is reported as such, never shown as if it were fine.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlsecops_provider.core.errors import MLSecOpsError
from mlsecops_provider.core.evidence import EvidenceStore
from mlsecops_provider.plugins.gate_data import RunView
from mlsecops_provider.plugins.gate_evidence import GateView, Integrity

log = logging.getLogger(__name__)
SHADOW_GATE = "shadow_evaluation"
Trusted = Callable[[], Mapping[str, Any]]


def task_order(session: Any, dag_run: Any, bag: Any = None) -> list[str]:
    """Task ids of the run's DAG version in topological order; ``[]`` if the DAG is unknown.

    ``bag``: a ``DBDagBag`` to share between runs (it caches deserialized DAG versions).
    """
    from airflow.models.dagbag import DBDagBag

    try:
        bag = bag or DBDagBag(load_op_links=False)
        dag = bag.get_dag_for_run(dag_run, session)
    except Exception as err:  # a DAG that cannot be deserialized must not break the page
        log.warning("task order of %s: %s", dag_run.dag_id, err)
        return []
    return list(_flatten(dag.task_group)) if dag is not None else []


def _flatten(group: Any) -> Iterator[str]:
    for node in group.topological_sort():
        if hasattr(node, "children"):  # a task group: its tasks in their own order
            yield from _flatten(node)
        else:
            yield str(node.task_id)


# ---------------------------------------------------------------------------- pinned keys


def pinned_keys() -> dict[str, Any]:
    """The public keys the policy's ``signing`` section pins, by key id (raises if none)."""
    from mlsecops_provider.core.policy import load_policy
    from mlsecops_provider.core.promotion.checks import SigningPolicy
    from mlsecops_provider.core.settings import Settings

    policy = load_policy(os.environ.get("MLSECOPS_POLICY") or None)
    signing = SigningPolicy.from_policy(policy)
    return signing.trusted_keys(Settings.from_env().home, f"{policy.source}: signing")


# ---------------------------------------------------------------------------- the decision


@dataclass(frozen=True)
class Decision:
    """The promotion gate's outcome, checked and ready to be put in words."""

    state: str  # promoted | refused | error | unverified (report not verified)
    model: str | None = None
    version: str | None = None
    alias: str | None = None
    previous: str | None = None
    key_id: str | None = None
    model_sha256: str | None = None
    invocation: str | None = None
    reasons: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)  # uri, sha256, status, signer, at
    approval: dict[str, Any] | None = None
    audit: dict[str, Any] = field(default_factory=dict)  # entry + chain status

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def promotion_decision(
    run: RunView, store: EvidenceStore, trusted: Trusted, s3_factory: Any = None
) -> Decision | None:
    """The run's promotion decision, or None when the run has no promotion gate."""
    gate = run.promotion
    if gate is None:
        return None
    if gate.integrity is not Integrity.VERIFIED:
        return Decision(state="unverified", reasons=[gate.detail or gate.verdict])
    details = gate.details
    state = {"pass": "promoted", "fail": "refused"}.get(gate.verdict, gate.verdict)
    reasons = [str(r) for r in details.get("reasons") or [] if r]
    if not reasons and gate.verdict not in ("pass", "fail") and gate.message:
        reasons = [gate.message]
    record = _record(store, details, trusted)
    predicate = record.pop("predicate", {})
    approval = predicate.get("approval") if isinstance(predicate.get("approval"), dict) else None
    previous = details.get("previous_version", details.get("champion"))
    return Decision(
        state=state,
        model=_opt(details.get("registered_model")),
        version=_opt(details.get("version")),
        alias=_opt(details.get("alias")),
        previous=_opt(previous),
        key_id=_opt(details.get("key_id") or record.get("signer")),
        model_sha256=_opt(details.get("model_sha256")),
        invocation=_opt(details.get("invocation")),
        reasons=reasons,
        record=record,
        approval=approval,
        audit=_audit(store, details.get("audit"), s3_factory),
    )


def in_store(store: EvidenceStore, uri: str) -> bool:
    """Whether ``uri`` is a plain path under the evidence store (no ``..``, no escapes)."""
    from mlsecops_provider.plugins.gate_evidence import evidence_dag_segment

    try:
        evidence_dag_segment(store.root_uri, uri)
    except ValueError:
        return False
    return True


def _opt(value: Any) -> str | None:
    return None if value in (None, "", "none") else str(value)


def _record(store: EvidenceStore, details: Mapping[str, Any], trusted: Trusted) -> dict[str, Any]:
    """The signed record: digest checked, signature checked with the pinned keys, predicate."""
    from mlsecops_provider.core.promotion.signing import SignatureError, dsse_verify

    uri, sha256 = details.get("evidence_uri"), details.get("evidence_sha256")
    if not isinstance(uri, str) or not isinstance(sha256, str):
        return {}
    found: dict[str, Any] = {"uri": uri, "sha256": sha256}
    if not in_store(store, uri):
        return {**found, "status": "unreadable", "problem": "outside the evidence store"}
    try:
        envelope = store.read_bytes(uri, sha256)
        payload = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
    except MLSecOpsError as err:
        return {**found, "status": "tampered", "problem": str(err)}
    except (ValueError, KeyError, TypeError) as err:
        return {**found, "status": "unreadable", "problem": f"not a DSSE envelope ({err})"}
    predicate = payload.get("predicate") if isinstance(payload, dict) else None
    predicate = predicate if isinstance(predicate, dict) else {}
    found.update(predicate=predicate, at=predicate.get("promotedAt"))
    try:
        verified = dsse_verify(envelope, trusted())
    except SignatureError as err:
        return {**found, "status": "not verified", "problem": str(err)}
    except MLSecOpsError as err:  # no key pinned, unreadable key file
        return {**found, "status": "not checked", "problem": str(err)}
    return {**found, "status": "verified", "signer": verified.key_id}


def _audit(store: EvidenceStore, ref: Any, s3_factory: Any) -> dict[str, Any]:
    """The audit entry the gate wrote, read from a verified chain."""
    from mlsecops_provider.core.promotion.audit_log import AuditLog

    if not isinstance(ref, Mapping) or not isinstance(ref.get("uri"), str):
        return {}
    uri, seq, digest = str(ref["uri"]), ref.get("seq"), ref.get("hash")
    found: dict[str, Any] = {"uri": uri, "seq": seq, "hash": digest}
    if not in_store(store, uri):
        return {**found, "status": "unreadable", "problem": "outside the evidence store"}
    try:
        report = AuditLog(uri, s3_factory).verify()
    except MLSecOpsError as err:
        return {**found, "status": "unreadable", "problem": str(err)}
    entry = next((e for e in report.entries if e.seq == seq), None)
    if entry is None:
        problem = report.problem or f"no entry #{seq} in the log"
        return {**found, "status": "missing", "problem": problem}
    found.update(time=entry.time, kind=entry.kind, details=dict(entry.details))
    found["entries"] = len(report.entries)
    if entry.hash != digest:
        return {**found, "status": "tampered", "problem": f"entry #{seq} has another hash"}
    if not report.ok:
        return {**found, "status": "broken chain", "problem": report.problem}
    return {**found, "status": "intact"}


# ---------------------------------------------------------------------------- comparisons


def comparisons(run: RunView) -> list[dict[str, Any]]:
    """Rows ``{gate, metric, candidate, champion, delta, delta_ci, relative, relative_ci,
    higher_is_better}`` for every metric a verified gate compared with the champion."""
    rows: list[dict[str, Any]] = []
    for gate in run.gates:
        if gate.integrity is not Integrity.VERIFIED:
            continue
        estimates = _shadow_estimates(gate)
        rows.extend(estimates if estimates else _metric_pairs(gate))
        rows.extend(_disparities(gate))
        rows.extend(_importance_moves(gate))
    return rows


def _row(gate: str, metric: str, candidate: Any, champion: Any, **more: Any) -> dict[str, Any]:
    base = {"gate": gate, "metric": metric, "candidate": candidate, "champion": champion}
    base.update(delta=_minus(candidate, champion), delta_ci=None, relative=None)
    base.update(relative_ci=None, higher_is_better=None)
    return {**base, **more}


def _disparities(gate: GateView) -> list[dict[str, Any]]:
    """The fairness gate's disparities per sensitive column, candidate vs champion."""
    from mlsecops_provider.plugins.pictures import dig

    columns = dig(gate.details, "columns")
    rows = []
    for column, result in columns.items() if isinstance(columns, Mapping) else []:
        disparities = dig(result, "disparities")
        for name, d in disparities.items() if isinstance(disparities, Mapping) else []:
            if not isinstance(d, Mapping) or d.get("champion") is None:
                continue
            lower_better = "difference" in str(name)  # ratios: higher is fairer
            rows.append(
                _row(
                    gate.gate, f"{name} ({column})", d.get("candidate"), d.get("champion"),
                    delta_ci=d.get("delta_ci"), higher_is_better=not lower_better,
                )
            )  # fmt: skip
    return rows


def _importance_moves(gate: GateView) -> list[dict[str, Any]]:
    """The explainability gate's features whose share of importance moved most."""
    from mlsecops_provider.plugins.pictures import dig

    moved = dig(gate.details, "drift", "moved_most")
    return [
        _row(gate.gate, f"importance share: {m.get('feature')}", m.get("candidate_share"),
             m.get("champion_share"))
        for m in (moved if isinstance(moved, list) else [])
        if isinstance(m, Mapping) and m.get("feature") is not None
    ]  # fmt: skip


def _shadow_estimates(gate: GateView) -> list[dict[str, Any]]:
    from mlsecops_provider.plugins.pictures import dig

    overall = dig(gate.details, "estimates", "all")
    if gate.gate != SHADOW_GATE or not isinstance(overall, Mapping):
        return []
    rows = []
    for metric, est in overall.items():
        if not isinstance(est, Mapping) or est.get("champion") is None:
            continue
        rows.append(
            {
                "gate": gate.gate,
                "metric": str(metric),
                "candidate": est.get("candidate"),
                "champion": est.get("champion"),
                "candidate_ci": est.get("candidate_ci"),
                "champion_ci": est.get("champion_ci"),
                "delta": est.get("delta"),
                "delta_ci": est.get("delta_ci"),
                "relative": est.get("relative"),
                "relative_ci": est.get("relative_ci"),
                "higher_is_better": _higher_is_better(str(metric)),
            }
        )
    return rows


def _metric_pairs(gate: GateView) -> list[dict[str, Any]]:
    metrics = gate.metrics
    rows = []
    for key, candidate in metrics.items():
        if not key.startswith("candidate."):
            continue
        metric = key.removeprefix("candidate.")
        champion = metrics.get(f"champion.{metric}")
        if champion is None:
            continue
        low, high = metrics.get(f"delta.{metric}.low"), metrics.get(f"delta.{metric}.high")
        rows.append(
            {
                "gate": gate.gate,
                "metric": metric,
                "candidate": candidate,
                "champion": champion,
                "delta": metrics.get(f"delta.{metric}", _minus(candidate, champion)),
                "delta_ci": [low, high] if low is not None and high is not None else None,
                "relative": None,
                "relative_ci": None,
                "higher_is_better": _higher_is_better(metric),
            }
        )
    return rows


def _minus(a: Any, b: Any) -> float | None:
    try:
        return float(a) - float(b)
    except (TypeError, ValueError):
        return None


def _higher_is_better(metric: str) -> bool | None:
    from mlsecops_provider.core.shadow.policy import KNOWN_METRICS, higher_is_better

    return higher_is_better(metric) if metric in KNOWN_METRICS else None
