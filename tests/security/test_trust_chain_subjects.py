"""Red team, trust chain: gate verdicts about other bytes or other runs must not be signed.

Each test plays an attacker with write access to the artifact store or the registry (or a
DAG author wiring the wrong XComs) and tries to get a model promoted whose gates did not
check exactly its bytes in this DAG run. Real MLflow (SQLite), model-signing, file:// stores.
"""

from __future__ import annotations

from typing import Any

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.promotion.checks import PromotionRequest
from mlsecops_provider.core.promotion.gate import PromotionEnv, promote
from mlsecops_provider.core.tracking.registry import alias_version
from tests.core.promotion import test_promotion
from tests.core.promotion.test_promotion import (
    DAG,
    DATASET_SHA256,
    World,
    artifact_dir,
    gate_run,
    make_policy,
    new_version,
    run_promotion,
    signed_statement,
)

world = test_promotion.world  # the module-scoped fixture: MLflow, keys, evidence store

GATES = {"dependency_audit": "pass", "model_scan": "pass", "data_validation": "pass"}


def _policy(world: World) -> Any:
    from mlsecops_provider.core.policy import parse_policy

    base = make_policy(world.keys)
    data = {
        "required_gates": [*GATES, "provenance"],
        "signing": dict(base.signing),
    }
    return parse_policy(data, "test-policy.yaml", "ab" * 32)


def _promote(world: World, name: str, seed: int, run_id: str, **kwargs: Any) -> Any:
    candidate = new_version(world, name, seed)
    summaries, provenance = gate_run(world, candidate, run_id, GATES, **kwargs)
    request = PromotionRequest(candidate, [*summaries, provenance], provenance, _policy(world))
    result, details = promote(request, world.key, PromotionEnv.create(world.settings, DAG, run_id))
    return candidate, result, details


def test_model_swapped_after_the_scan_is_refused_naming_both_digests(world: World) -> None:
    """A scan verdict about other model bytes than the candidate's is refused, naming both."""
    scanned = "5c" * 32  # what scan_model hashed before the artifact was replaced
    candidate, result, _ = _promote(
        world, "swap-after-scan", 21, "run-swap", subjects={"model_scan": {"model": scanned}}
    )
    assert result.verdict is Verdict.FAIL
    reason = next(f["reason"] for f in result.findings if "model_scan" in f["reason"])
    assert f"checked model sha256:{scanned}" in reason and "the candidate is sha256:" in reason
    assert alias_version(world.client, candidate.name, "champion") is None
    refusal = world.audit.entries()[-1]
    assert refusal.kind == "refusal" and any(scanned in r for r in refusal.details["reasons"])


def test_report_from_another_dag_is_refused(world: World) -> None:
    """Gate reports recorded by another DAG's run are not this promotion's evidence."""
    _, result, _ = _promote(
        world, "other-dag", 22, "run-od", report_run=("some_other_dag", "run-od")
    )
    assert result.verdict is Verdict.FAIL
    assert "report belongs to some_other_dag/run-od, not secure_training/run-od" in str(
        result.findings
    )


def test_report_from_an_older_run_of_the_same_dag_is_refused(world: World) -> None:
    """A passing report of an earlier run (same DAG) cannot stand in for this run's gate."""
    _, result, _ = _promote(world, "older-run", 23, "run-new", report_run=(DAG, "run-old"))
    assert result.verdict is Verdict.FAIL
    assert "belongs to secure_training/run-old, not secure_training/run-new" in result.message


def test_report_of_another_mlflow_run_is_refused(world: World) -> None:
    """Reports must belong to the MLflow run the candidate version was logged in."""
    import mlflow

    from mlsecops_provider.core.evidence import EvidenceStore, GateResult

    candidate = new_version(world, "other-mlflow-run", 24)
    summaries, provenance = gate_run(world, candidate, "run-om", GATES)
    store = EvidenceStore(world.settings.evidence_uri)
    stored, _ = store.read_report(summaries[0]["evidence_uri"], summaries[0]["evidence_sha256"])
    with mlflow.start_run(experiment_id=world.experiment) as other:
        pass
    forged = GateResult(**{**stored.to_dict(), "mlflow_run_id": other.info.run_id})
    summaries[0] = store.put_report(DAG, "run-om", forged, {}).summary()
    request = PromotionRequest(candidate, [*summaries, provenance], provenance, _policy(world))
    result, _ = promote(request, world.key, PromotionEnv.create(world.settings, DAG, "run-om"))
    assert result.verdict is Verdict.FAIL
    assert f"report is of MLflow run {other.info.run_id}" in result.message


def test_validated_dataset_not_in_the_provenance_is_refused(world: World) -> None:
    """Validation of other data than the provenance lists does not cover the training data."""
    other = "0d" * 32
    _, result, _ = _promote(
        world, "other-data", 25, "run-data", subjects={"data_validation": {"data": other}}
    )
    assert result.verdict is Verdict.FAIL
    reason = next(f["reason"] for f in result.findings if "data_validation" in f["reason"])
    assert f"checked dataset data sha256:{other}" in reason
    assert f"train sha256:{DATASET_SHA256}" in reason


def test_required_report_naming_no_subject_is_refused(world: World) -> None:
    """A required gate whose report names no digest (what did it check?) blocks promotion."""
    _, result, _ = _promote(
        world, "no-subject", 26, "run-ns", subjects={"dependency_audit": {"path": "/tmp/x"}}
    )
    assert result.verdict is Verdict.FAIL
    assert "gate dependency_audit: report names no subject digest" in str(result.findings)


def test_scan_report_without_a_model_subject_is_refused(world: World) -> None:
    """model_scan must name a model digest; a dataset digest alone is not a model scan."""
    _, result, _ = _promote(
        world,
        "scan-no-model",
        27,
        "run-snm",
        subjects={"model_scan": {"dataset:train": DATASET_SHA256}},
    )
    assert result.verdict is Verdict.FAIL
    assert "gate model_scan: report names no model subject" in str(result.findings)


def test_model_changed_after_provenance_is_refused(world: World) -> None:
    """Bytes swapped in the registry after every gate ran are caught before signing."""
    candidate = new_version(world, "swap-late", 28)
    summaries, provenance = gate_run(world, candidate, "run-late", GATES)
    with open(artifact_dir(candidate) / "model.skops", "ab") as handle:
        handle.write(b"\x00")
    request = PromotionRequest(candidate, [*summaries, provenance], provenance, _policy(world))
    result, _ = promote(request, world.key, PromotionEnv.create(world.settings, DAG, "run-late"))
    assert result.verdict is Verdict.FAIL and "model changed since provenance" in result.message


def test_signed_statement_lists_the_subjects_each_gate_checked(world: World) -> None:
    """The happy path: the signature attests, per gate, the digests that gate checked."""
    candidate, result, details = _promote(world, "subjects-signed", 29, "run-ok")
    assert result.verdict is Verdict.PASS, result.message
    predicate = signed_statement(world, candidate.name, candidate.version)["predicate"]
    gates = {g["gate"]: g for g in predicate["gates"]}
    model = details["model_sha256"]
    assert {"kind": "model", "name": "model", "sha256": model} in gates["model_scan"]["subjects"]
    assert gates["data_validation"]["subjects"] == [
        {"kind": "dataset", "name": "data", "sha256": DATASET_SHA256}
    ]
    assert gates["dependency_audit"]["subjects"][0]["kind"] == "sbom"
    assert all(g["dagId"] == DAG and g["runId"] == "run-ok" for g in gates.values())
    assert predicate["datasets"] == [{"name": "train", "sha256": DATASET_SHA256}]
    assert predicate["alias"] == "champion" and predicate["previousAlias"] == "previous-champion"
    assert predicate["manifest"]["ignore"] == [".git", ".gitattributes", ".github", ".gitignore"]


def test_non_required_gate_about_another_model_is_refused_too(world: World) -> None:
    """An extra gate that checked other bytes is not silently signed as evidence."""
    candidate = new_version(world, "extra-gate", 30)
    gates = {**GATES, "explainability": "pass"}
    summaries, provenance = gate_run(
        world, candidate, "run-extra", gates, subjects={"explainability": {"model": "77" * 32}}
    )
    request = PromotionRequest(candidate, [*summaries, provenance], provenance, _policy(world))
    result, _ = promote(request, world.key, PromotionEnv.create(world.settings, DAG, "run-extra"))
    assert result.verdict is Verdict.FAIL and "gate explainability: checked model" in str(
        result.findings
    )


def test_run_promotion_helper_still_passes(world: World) -> None:
    """Control: the same helpers with honest subjects promote (no test passes by accident)."""
    candidate = new_version(world, "control", 31)
    result, _ = run_promotion(world, candidate, "run-control")
    assert result.verdict is Verdict.PASS, result.message
