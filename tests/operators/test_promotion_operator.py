"""SignedPromotionGateOperator and RollbackOperator on the session's MLflow and evidence store."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.promotion.audit_log import AuditLog, default_log_uri
from mlsecops_provider.core.promotion.checks import Candidate
from mlsecops_provider.core.promotion.signing import SigningKey, ensure_demo_keys
from mlsecops_provider.core.promotion.verify import verify_promotion
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.registry import alias_version
from tests.core.promotion.test_promotion import World, gate_run, make_policy, new_version
from tests.operators.fakes import FakeTaskInstance


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import mlflow
    from mlflow import MlflowClient

    settings = Settings.from_env()
    keys = ensure_demo_keys(settings.home)
    experiment = MlflowClient(settings.tracking_uri).create_experiment(
        f"promotion-operator-{os.getpid()}",
        artifact_location=f"file://{settings.home}/mlartifacts",
    )
    yield World(
        settings, keys, SigningKey.from_file(keys.private_path), experiment, make_policy(keys)
    )
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])


@pytest.fixture(scope="module")
def policy_path(world: World, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text(
        "version: 1\nrequired_gates: [dependency_audit, provenance]\n"
        "signing:\n  public_keys: [keys/promotion.pub.pem]\n"
        f"  key_ids: ['{world.keys.key_id}']\n"
    )
    return str(path)


def _operator(
    candidate: Candidate, summaries: list[dict[str, Any]], provenance: dict[str, Any], **kw: Any
) -> Any:
    from mlsecops_provider.operators.promotion import SignedPromotionGateOperator

    return SignedPromotionGateOperator(
        task_id="promote",
        model={
            "name": candidate.name,
            "version": candidate.version,
            "source_uri": candidate.source_uri,
        },
        provenance=provenance,
        gate_results=summaries,
        **kw,
    )


def test_promotes_with_the_key_from_an_airflow_connection(
    world: World, policy_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = world.keys.private_path.read_text()
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROMOTION_SIGNER", json.dumps({"conn_type": "generic", "password": pem})
    )
    candidate = new_version(world, "op-conn", 21)
    ti = FakeTaskInstance("op-conn")
    summaries, provenance = gate_run(world, candidate, ti.run_id)
    operator = _operator(
        candidate,
        summaries,
        provenance,
        policy_path=policy_path,
        signing_key_conn_id="promotion_signer",
    )
    result = operator.execute({"ti": ti})
    assert result["gate"] == "promotion" and result["verdict"] == "pass", result["message"]
    assert result["promoted"] is True and result["record_uri"].endswith("promotion.dsse.json")
    assert "PRIVATE KEY" not in json.dumps(result) + json.dumps(ti.xcom, default=str)
    check = verify_promotion(
        "op-conn", "champion", world.keys.public_path.read_bytes(), world.settings.tracking_uri
    )
    assert check.verified and check.version == candidate.version, check.reason


def test_refused_promotion_fails_the_task_and_is_audited(
    world: World, policy_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("MLSECOPS_SIGNING_KEY", world.keys.private_path.read_text())
    candidate = new_version(world, "op-refused", 22)
    ti = FakeTaskInstance("op-refused")
    summaries, provenance = gate_run(
        world, candidate, ti.run_id, verdicts={"dependency_audit": "fail"}
    )
    operator = _operator(candidate, summaries, provenance, policy_path=policy_path)
    with pytest.raises(AirflowFailException, match="gate promotion fail: promotion refused"):
        operator.execute({"ti": ti})
    assert alias_version(world.client, "op-refused", "champion") is None
    last = AuditLog(default_log_uri(world.settings.evidence_uri)).entries()[-1]
    assert last.kind == "refusal" and last.details["registered_model"] == "op-refused"


def test_missing_signing_key_is_a_recorded_error(world: World, policy_path: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    candidate = new_version(world, "op-nokey", 23)
    ti = FakeTaskInstance("op-nokey")
    summaries, provenance = gate_run(world, candidate, ti.run_id)
    operator = _operator(
        candidate, summaries, provenance, policy_path=policy_path, signing_key_env="NO_SUCH_VAR"
    )
    with pytest.raises(AirflowFailException, match="ConfigError: no signing key"):
        operator.execute({"ti": ti})
    assert alias_version(world.client, "op-nokey", "champion") is None


def test_approval_operator_result_goes_into_the_signed_record(
    world: World, policy_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    approve = ApprovalOperator(task_id="approve", subject="Promote?")
    event = {
        "chosen_options": ["Approve"],
        "params_input": {},
        "responded_at": datetime(2026, 11, 22, 9, 30, tzinfo=UTC),
        "responded_by_user": {"id": "ada", "name": "Ada"},
    }
    approval = approve.execute_complete({}, event)  # what approve.output carries downstream
    monkeypatch.setenv("MLSECOPS_SIGNING_KEY", world.keys.private_path.read_text())
    candidate = new_version(world, "op-approved", 24)
    ti = FakeTaskInstance("op-approved")
    summaries, provenance = gate_run(world, candidate, ti.run_id)
    operator = _operator(
        candidate,
        summaries,
        provenance,
        policy_path=policy_path,
        approval=dict(approval),
        require_approval=True,
    )
    result = operator.execute({"ti": ti})
    assert result["verdict"] == "pass", result["message"]
    entry = AuditLog(default_log_uri(world.settings.evidence_uri)).entries()[-1]
    assert entry.kind == "promotion" and entry.details["version"] == candidate.version
    from tests.core.promotion.test_promotion import signed_statement

    signed = signed_statement(world, "op-approved", candidate.version)["predicate"]["approval"]
    assert signed == {
        "approved": True,
        "by": "Ada (ada)",
        "at": "2026-11-22T09:30:00+00:00",
        "comment": "",
    }


def test_rollback_operator_moves_back_and_refuses_when_nothing_is_left(
    world: World, policy_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from mlsecops_provider.operators.rollback import RollbackOperator

    monkeypatch.setenv("MLSECOPS_SIGNING_KEY", world.keys.private_path.read_text())
    versions = []
    for seed in (25, 26):
        candidate = new_version(world, "op-rollback", seed)
        ti = FakeTaskInstance(f"op-rollback-{seed}")
        summaries, provenance = gate_run(world, candidate, ti.run_id)
        _operator(candidate, summaries, provenance, policy_path=policy_path).execute({"ti": ti})
        versions.append(candidate.version)
    operator = RollbackOperator(
        task_id="rollback", registered_model="op-rollback", policy_path=policy_path, reason="drill"
    )
    result = operator.execute({"ti": FakeTaskInstance("op-rollback-undo")})
    assert result["rolled_back"] and result["to_version"] == versions[0]
    assert alias_version(world.client, "op-rollback", "champion") == versions[0]
    last = AuditLog(default_log_uri(world.settings.evidence_uri)).entries()[-1]
    assert last.kind == "rollback" and last.details["actor"].startswith("airflow:secure_training/")
    with pytest.raises(AirflowFailException, match="nothing to roll back to"):
        operator.execute({"ti": FakeTaskInstance("op-rollback-again")})


def test_key_file_path_is_a_source_too(world: World, tmp_path: Path) -> None:
    from mlsecops_provider.operators.promotion import load_signing_key

    key = load_signing_key(None, "NO_SUCH_VAR", str(world.keys.private_path))
    assert key.key_id == world.keys.key_id
