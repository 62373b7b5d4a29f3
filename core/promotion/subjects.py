"""Subjects, not just verdicts: each gate report must be about this run's candidate and data.

A gate's verdict means something only for the bytes it checked. :func:`check_subjects`
compares what each report names (its :class:`~mlsecops_provider.core.evidence.Subject`
list, its DAG run and MLflow run) with the promotion's scope: the model digest and the
datasets of the provenance statement, the DAG run that promotes, the candidate version's
MLflow run. Every mismatch is a reason to refuse that names the gate and both digests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlsecops_provider.core.evidence import GateResult

# What a required gate's report must name (kinds from core.evidence.SUBJECT_KINDS).
EXPECTED_KINDS: dict[str, tuple[str, ...]] = {
    "data_validation": ("dataset",),
    "pii_deidentification": ("dataset",),
    "model_scan": ("model",),
    "shadow_evaluation": ("model", "dataset"),
    "dependency_audit": ("sbom",),
    "provenance": ("model",),
    "explainability": ("model", "dataset"),
    "fairness": ("model", "dataset"),
    "privacy_risk": ("model", "dataset"),
    "adversarial": ("model", "dataset"),
    "backdoor_scan": ("model", "dataset"),
}


@dataclass(frozen=True)
class Scope:
    """What every report of this promotion must be about."""

    dag_id: str
    run_id: str
    model_sha256: str  # the provenance statement's subject (checked against the model bytes)
    datasets: Mapping[str, str] = field(default_factory=dict)  # sha256 -> provenance name
    mlflow_run_id: str | None = None  # the candidate version's MLflow run, if the registry has one


def provenance_datasets(statement: Mapping[str, Any]) -> dict[str, str]:
    """``{sha256: name}`` of the ``dataset:*`` dependencies of a provenance statement."""
    try:
        deps = statement["predicate"]["buildDefinition"].get("resolvedDependencies") or []
    except (KeyError, TypeError, AttributeError):
        return {}
    out = {}
    for dep in deps:
        name = str(dep.get("name", "")) if isinstance(dep, Mapping) else ""
        digest = (dep.get("digest") or {}).get("sha256") if name.startswith("dataset:") else None
        if isinstance(digest, str):
            out[digest] = name.removeprefix("dataset:")
    return out


def _run_reasons(gate: str, result: GateResult, scope: Scope) -> list[str]:
    if (result.dag_id, result.run_id) != (scope.dag_id, scope.run_id):
        theirs = f"{result.dag_id}/{result.run_id}" if result.dag_id else "no DAG run"
        return [f"gate {gate}: report belongs to {theirs}, not {scope.dag_id}/{scope.run_id}"]
    if scope.mlflow_run_id and result.mlflow_run_id != scope.mlflow_run_id:
        return [
            f"gate {gate}: report is of MLflow run {result.mlflow_run_id or 'none'}, "
            f"the candidate's is {scope.mlflow_run_id}"
        ]
    return []


def check_subjects(
    gate: str, result: GateResult, scope: Scope, required: bool
) -> tuple[list[dict[str, str]], list[str]]:
    """The report's subjects (for the signed statement) and the reasons to refuse."""
    subjects = result.subject_refs()
    reasons = _run_reasons(gate, result, scope)
    kinds = {s.kind for s in subjects}
    if required and not subjects:
        reasons.append(f"gate {gate}: report names no subject digest (what did it check?)")
    elif required:
        reasons += [
            f"gate {gate}: report names no {kind} subject"
            for kind in EXPECTED_KINDS.get(gate, ())
            if kind not in kinds
        ]
    known = ", ".join(f"{n} sha256:{d}" for d, n in sorted(scope.datasets.items(), key=_by_name))
    for subject in subjects:
        if subject.kind == "model" and subject.sha256 != scope.model_sha256:
            reasons.append(
                f"gate {gate}: checked model sha256:{subject.sha256}, "
                f"the candidate is sha256:{scope.model_sha256}"
            )
        elif subject.kind == "dataset" and subject.sha256 not in scope.datasets:
            reasons.append(
                f"gate {gate}: checked dataset {subject.name} sha256:{subject.sha256}, "
                f"not one of the provenance datasets ({known or 'none'})"
            )
    return [s.to_dict() for s in subjects], reasons


def _by_name(item: tuple[str, str]) -> str:
    return item[1]
