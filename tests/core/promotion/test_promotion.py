"""The signed promotion gate, consumer verification and rollback, end to end on real tools.

Real sklearn models logged with ``mlflow.sklearn`` (skops) into a temporary MLflow SQLite
store and registered; real model-signing and cryptography; a file:// evidence store.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.errors import PolicyError
from mlsecops_provider.core.evidence import EvidenceStore, GateResult, Verdict
from mlsecops_provider.core.hashing import hash_path
from mlsecops_provider.core.policy import Policy, parse_policy
from mlsecops_provider.core.promotion.audit_log import AuditLog, default_log_uri
from mlsecops_provider.core.promotion.checks import (
    Approval,
    Candidate,
    PromotionRequest,
    SigningPolicy,
)
from mlsecops_provider.core.promotion.gate import PromotionEnv, promote
from mlsecops_provider.core.promotion.record import TAG_EVIDENCE_SHA256, TAG_EVIDENCE_URI
from mlsecops_provider.core.promotion.signing import KeyPair, SigningKey, ensure_demo_keys
from mlsecops_provider.core.promotion.verify import verify_promotion
from mlsecops_provider.core.provenance.slsa import (
    Resource,
    RunInfo,
    build_statement,
    statement_bytes,
)
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.registry import alias_version, download_model

DAG = "secure_training"


@dataclass
class World:
    settings: Settings
    keys: KeyPair
    key: SigningKey
    experiment: str
    policy: Policy

    @property
    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(self.settings.tracking_uri)

    @property
    def audit(self) -> AuditLog:
        return AuditLog(default_log_uri(self.settings.evidence_uri))


def make_policy(keys: KeyPair, **signing: Any) -> Policy:
    section = {"public_keys": ["keys/promotion.pub.pem"], "key_ids": [keys.key_id], **signing}
    data = {"required_gates": ["dependency_audit", "provenance"], "signing": section}
    return parse_policy(data, "test-policy.yaml", "ab" * 32)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import mlflow
    from mlflow import MlflowClient

    home = tmp_path_factory.mktemp("promotion-home")
    settings = Settings(
        home=home,
        tracking_uri=f"sqlite:///{home}/mlflow.db",
        evidence_uri=f"file://{home}/evidence",
        artifact_uri=f"file://{home}/artifacts",
    )
    experiment = MlflowClient(settings.tracking_uri).create_experiment(
        "promotion-tests", artifact_location=f"file://{home}/mlartifacts"
    )
    keys = ensure_demo_keys(home)
    yield World(
        settings, keys, SigningKey.from_file(keys.private_path), experiment, make_policy(keys)
    )
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])


def new_version(world: World, name: str, seed: int = 0) -> Candidate:
    """Train, log (skops) and register a small real model."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(world.settings.tracking_uri)
    rows = np.random.default_rng(seed).normal(size=(60, 3))
    model = LogisticRegression().fit(rows, (rows[:, 0] > 0).astype(int))
    with mlflow.start_run(experiment_id=world.experiment):
        info = mlflow.sklearn.log_model(
            model, name="model", serialization_format="skops", pip_requirements=["scikit-learn"]
        )
    version = mlflow.register_model(info.model_uri, name)
    return Candidate(name, str(version.version), str(version.source))


def artifact_dir(candidate: Candidate) -> Path:
    import mlflow

    model_id = candidate.source_uri.rsplit("/", 1)[-1]
    return Path(mlflow.get_logged_model(model_id).artifact_location.removeprefix("file://"))


DATASET_SHA256 = "cd" * 32
SBOM_SHA256 = "ef" * 32


def default_subjects(gate: str, model_sha256: str) -> dict[str, str]:
    """What each gate of the DAG names as its subjects."""
    return {
        "dependency_audit": {"sbom": f"sha256:{SBOM_SHA256}"},
        "model_scan": {"model": model_sha256, "path": "model"},
        "data_validation": {"data": f"sha256:{DATASET_SHA256}"},
        "shadow_evaluation": {"candidate": f"sha256:{model_sha256}", "data": DATASET_SHA256},
    }.get(gate, {"model": model_sha256})


def gate_run(
    world: World,
    candidate: Candidate,
    run_id: str,
    verdicts: dict[str, str] | None = None,
    *,
    subjects: dict[str, dict[str, str]] | None = None,
    report_run: tuple[str, str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Gate reports and a provenance statement in the evidence store, as the DAG writes them.

    ``subjects`` overrides what a gate names; ``report_run`` the (dag_id, run_id) the gate
    reports (not the provenance) say they belong to.
    """
    store = EvidenceStore(world.settings.evidence_uri)
    mlflow_run = world.client.get_model_version(candidate.name, candidate.version).run_id
    with tempfile.TemporaryDirectory() as tmp:
        digest = hash_path(download_model(world.settings, candidate.source_uri, tmp)).root_digest
    dag_id, report_run_id = report_run or (DAG, run_id)
    summaries = []
    for gate, verdict in (verdicts or {"dependency_audit": "pass"}).items():
        result = GateResult(
            gate=gate,
            verdict=Verdict(verdict),
            message=f"{gate} {verdict}",
            subjects=(subjects or {}).get(gate, default_subjects(gate, digest)),
            dag_id=dag_id,
            run_id=report_run_id,
            mlflow_run_id=mlflow_run,
        )
        summaries.append(store.put_report(dag_id, report_run_id, result.finished(), {}).summary())
    run = RunInfo(
        "test://builder", f"{DAG}/{run_id}", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"
    )
    subject = Resource(name=f"{candidate.name}/{candidate.version}", sha256=digest)
    dataset = Resource(name="dataset:train", sha256=DATASET_SHA256, uri="file:///data/train")
    statement = build_statement(subject, run, external_parameters={}, dependencies=[dataset])
    uri = store.uri_for(DAG, run_id, "provenance", "provenance.intoto.json")
    statement_ref = store.put_bytes(uri, statement_bytes(statement))
    result = GateResult(
        gate="provenance",
        verdict=Verdict.PASS,
        subjects={"model": digest, "dataset:train": DATASET_SHA256},
        dag_id=DAG,
        run_id=run_id,
        mlflow_run_id=mlflow_run,
    )
    stored = store.put_report(DAG, run_id, result.finished(), {"statement": statement})
    provenance = {**stored.summary(), "statement_uri": statement_ref.uri, "model_sha256": digest}
    return summaries, provenance


def run_promotion(
    world: World,
    candidate: Candidate,
    run_id: str,
    *,
    verdicts: dict[str, str] | None = None,
    policy: Policy | None = None,
    key: SigningKey | None = None,
    approval: Approval | None = None,
    before_move: Callable[[], None] | None = None,
) -> tuple[GateResult, dict[str, Any]]:
    summaries, provenance = gate_run(world, candidate, run_id, verdicts)
    request = PromotionRequest(
        candidate, [*summaries, provenance], provenance, policy or world.policy, approval
    )
    env = PromotionEnv.create(world.settings, DAG, run_id)
    env.before_move = before_move
    return promote(request, key or world.key, env)


def verify_cli(cli: Callable[..., Any], world: World, name: str, key: Path | None = None) -> int:
    """``mlsecops verify-promotion`` through the shared ``cli`` fixture (tests/conftest.py)."""
    done = cli(
        [
            "verify-promotion",
            "--registered-model",
            name,
            "--alias",
            "champion",
            "--public-key",
            str(key or world.keys.public_path),
            "--tracking-uri",
            world.settings.tracking_uri,
            "--log",
            world.audit.uri,
        ]
    )
    return int(done.code)


def signed_statement(world: World, name: str, version: str) -> dict[str, Any]:
    import base64

    tags = world.client.get_model_version(name, version).tags
    envelope = json.loads(Path(tags[TAG_EVIDENCE_URI].removeprefix("file://")).read_text())
    return dict(json.loads(base64.b64decode(envelope["payload"])))


# ---------------------------------------------------------------------------- happy path


@pytest.fixture(scope="module")
def two_promotions(world: World) -> dict[str, Any]:
    first = new_version(world, "flow", 1)
    one = run_promotion(world, first, "run-1")
    second = new_version(world, "flow", 2)
    two = run_promotion(world, second, "run-2")
    return {"candidates": (first, second), "results": (one, two)}


def test_first_model_becomes_champion_through_the_gate(
    world: World, two_promotions: dict[str, Any]
) -> None:
    result, details = two_promotions["results"][0]
    assert result.verdict is Verdict.PASS, result.message
    assert details["previous_version"] is None
    statement = signed_statement(world, "flow", "1")
    assert statement["predicate"]["previousChampion"] is None


def test_second_promotion_moves_champion_and_keeps_the_previous(
    world: World, two_promotions: dict[str, Any], cli: Callable[..., Any]
) -> None:
    result, details = two_promotions["results"][1]
    assert result.verdict is Verdict.PASS, result.message
    assert alias_version(world.client, "flow", "champion") == "2"
    assert alias_version(world.client, "flow", "previous-champion") == "1"
    statement = signed_statement(world, "flow", "2")
    predicate = statement["predicate"]
    assert statement["subject"][0]["digest"]["sha256"] == details["model_sha256"]
    assert {g["gate"]: g["verdict"] for g in predicate["gates"]} == {
        "dependency_audit": "pass",
        "provenance": "pass",
    }
    assert all(len(g["report"]["sha256"]) == 64 for g in predicate["gates"])
    assert predicate["policy"]["sha256"] == "ab" * 32
    assert len(predicate["provenance"]["sha256"]) == 64
    assert predicate["signer"]["keyid"] == world.keys.key_id
    tags = world.client.get_model_version("flow", "2").tags
    assert tags["mlsecops.promotion.key_id"] == world.keys.key_id
    kinds = [(e.kind, e.details.get("version")) for e in world.audit.entries()]
    assert ("promotion", "1") in kinds and ("promotion", "2") in kinds

    check = verify_promotion(
        "flow", "champion", world.keys.public_path.read_bytes(), world.settings.tracking_uri
    )
    assert check.verified and check.version == "2", check.reason
    assert verify_cli(cli, world, "flow") == 0


# ---------------------------------------------------------------------------- consumers


@pytest.fixture()
def promoted(world: World, request: pytest.FixtureRequest) -> Candidate:
    name = f"consumer-{request.node.name.removeprefix('test_')[:30]}"
    candidate = new_version(world, name, 3)
    result, _ = run_promotion(world, candidate, f"run-{name}")
    assert result.verdict is Verdict.PASS, result.message
    return candidate


def test_model_changed_after_promotion_fails_verification(
    world: World, promoted: Candidate, cli: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with open(artifact_dir(promoted) / "model.skops", "ab") as handle:
        handle.write(b"\x00")
    assert verify_cli(cli, world, promoted.name) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "(model_changed)" in out and "model artifact changed" in out


def test_changed_evidence_fails_verification(
    world: World, promoted: Candidate, cli: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    tags = world.client.get_model_version(promoted.name, promoted.version).tags
    path = Path(tags[TAG_EVIDENCE_URI].removeprefix("file://"))
    envelope = json.loads(path.read_text())
    envelope["payloadType"] = "application/json"
    path.write_text(json.dumps(envelope))
    assert verify_cli(cli, world, promoted.name) == 1
    assert "(evidence_changed)" in capsys.readouterr().out

    from mlsecops_provider.core.storage import sha256_bytes

    # an attacker who also rewrites the digest tag still fails on the signature
    world.client.set_model_version_tag(
        promoted.name, promoted.version, TAG_EVIDENCE_SHA256, sha256_bytes(path.read_bytes())
    )
    assert verify_cli(cli, world, promoted.name) == 1
    assert "(bad_signature)" in capsys.readouterr().out


def test_wrong_key_fails_verification(
    world: World,
    promoted: Candidate,
    cli: Callable[..., Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = tmp_path / "other.pub.pem"
    other.write_bytes(SigningKey.generate().public_key.pem)
    assert verify_cli(cli, world, promoted.name, other) == 1
    out = capsys.readouterr().out
    assert "(wrong_key)" in out and world.keys.key_id in out


def test_alias_on_a_version_without_a_signed_record_fails(
    world: World, promoted: Candidate, cli: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    unsigned = new_version(world, promoted.name, 4)
    world.client.set_registered_model_alias(promoted.name, "champion", unsigned.version)
    assert verify_cli(cli, world, promoted.name) == 1
    out = capsys.readouterr().out
    assert "(no_record)" in out and f"version {unsigned.version} has no signed" in out
    signed_tags = world.client.get_model_version(promoted.name, promoted.version).tags
    for tag in (TAG_EVIDENCE_URI, TAG_EVIDENCE_SHA256):  # borrow the other version's record
        world.client.set_model_version_tag(promoted.name, unsigned.version, tag, signed_tags[tag])
    assert verify_cli(cli, world, promoted.name) == 1
    out = capsys.readouterr().out
    assert "(wrong_subject)" in out and f"not {promoted.name} v{unsigned.version}" in out
    assert verify_cli(cli, world, "no-such-model") == 1
    assert "(no_alias)" in capsys.readouterr().out


# ---------------------------------------------------------------------------- refusals


def test_failed_required_gate_refuses_with_an_audit_entry(world: World) -> None:
    candidate = new_version(world, "refused", 5)
    result, details = run_promotion(
        world, candidate, "run-refused", verdicts={"dependency_audit": "fail"}
    )
    assert result.verdict is Verdict.FAIL
    assert alias_version(world.client, "refused", "champion") is None
    last = world.audit.entries()[-1]
    assert last.kind == "refusal" and last.details["version"] == candidate.version
    assert any("gate dependency_audit: verdict fail" in r for r in last.details["reasons"])
    assert details["audit"]["seq"] == last.seq

    summaries, provenance = gate_run(world, candidate, "run-missing")
    Path(provenance["evidence_uri"].removeprefix("file://")).write_text("{}")  # report changed
    request = PromotionRequest(candidate, [provenance], provenance, world.policy)
    result, _ = promote(request, world.key, PromotionEnv.create(world.settings, DAG, "run-x"))
    reasons = [f["reason"] for f in result.findings]
    assert "required gate dependency_audit: no result in this run" in reasons
    assert any("report cannot be trusted" in r and "digest mismatch" in r for r in reasons)


def test_model_changed_between_provenance_and_promotion_is_refused(world: World) -> None:
    candidate = new_version(world, "swapped", 6)
    summaries, provenance = gate_run(world, candidate, "run-swapped")
    with open(artifact_dir(candidate) / "MLmodel", "a") as handle:
        handle.write("# swapped\n")
    request = PromotionRequest(candidate, [*summaries, provenance], provenance, world.policy)
    env = PromotionEnv.create(world.settings, DAG, "run-swapped")
    result, _ = promote(request, world.key, env)
    assert result.verdict is Verdict.FAIL and "model changed since provenance" in result.message


def test_signing_key_not_pinned_in_the_policy_is_refused(world: World) -> None:
    candidate = new_version(world, "unpinned", 7)
    result, _ = run_promotion(world, candidate, "run-unpinned", key=SigningKey.generate())
    assert result.verdict is Verdict.FAIL and "is not pinned" in result.message
    assert alias_version(world.client, "unpinned", "champion") is None


def test_two_promotions_racing_one_wins_the_other_fails_cleanly(world: World) -> None:
    champion = new_version(world, "race", 8)
    assert run_promotion(world, champion, "run-race-0")[0].verdict is Verdict.PASS
    ours, theirs = new_version(world, "race", 9), new_version(world, "race", 10)
    outcome = {}

    def rival_promotes_first() -> None:  # runs after our first read, before our re-read
        outcome["theirs"] = run_promotion(world, theirs, "run-race-2")[0]

    result, _ = run_promotion(world, ours, "run-race-1", before_move=rival_promotes_first)
    assert outcome["theirs"].verdict is Verdict.PASS
    assert result.verdict is Verdict.FAIL and "compare-and-set" in result.message
    assert alias_version(world.client, "race", "champion") == theirs.version
    assert alias_version(world.client, "race", "previous-champion") == champion.version
    assert "mlsecops.promotion.evidence_uri" not in (
        world.client.get_model_version("race", ours.version).tags
    )


def test_approval_required_reject_leaves_champion_and_approval_is_signed(world: World) -> None:
    policy = make_policy(world.keys, require_approval=True)
    candidate = new_version(world, "approval", 11)
    result, _ = run_promotion(world, candidate, "run-a1", policy=policy)
    assert result.verdict is Verdict.FAIL and "approval required" in result.message
    rejected = Approval.from_result(
        {
            "chosen_options": ["Reject"],
            "params_input": {},
            "responded_by_user": {"id": "bob", "name": "Bob"},
            "responded_at": "2026-11-22T10:00:00+00:00",
        }
    )
    result, _ = run_promotion(world, candidate, "run-a2", policy=policy, approval=rejected)
    assert result.verdict is Verdict.FAIL and "not approved" in result.message
    assert alias_version(world.client, "approval", "champion") is None

    from datetime import UTC, datetime

    approved = Approval.from_result(
        {
            "chosen_options": ["Approve"],
            "params_input": {},
            "responded_by_user": {"id": "ada", "name": "Ada"},
            "responded_at": datetime(2026, 11, 22, 11, 0, tzinfo=UTC),
        }
    )
    result, _ = run_promotion(world, candidate, "run-a3", policy=policy, approval=approved)
    assert result.verdict is Verdict.PASS, result.message
    approval = signed_statement(world, "approval", candidate.version)["predicate"]["approval"]
    assert approval["by"] == "Ada (ada)" and approval["at"].startswith("2026-11-22T11:00")


def test_signing_section_is_validated_naming_the_field(world: World) -> None:
    home = world.settings.home
    with pytest.raises(PolicyError, match=r"signing\.public_keys: no public key pinned"):
        SigningPolicy.from_policy(parse_policy({"signing": {}})).trusted_keys(home, "p: signing")
    with pytest.raises(PolicyError, match=r"signing: unknown field\(s\) \['public_key'\]"):
        SigningPolicy.from_policy(parse_policy({"signing": {"public_key": "x"}}, "p"))
    with pytest.raises(PolicyError, match=r"key_ids\[0\]"):
        SigningPolicy.from_policy(parse_policy({"signing": {"key_ids": ["nothex"]}}, "p"))
    other = "0" * 64
    policy = SigningPolicy.from_policy(make_policy(world.keys, key_ids=[other]))
    with pytest.raises(PolicyError, match=r"signing\.key_ids: pinned ids and public keys differ"):
        policy.trusted_keys(home, "test-policy.yaml: signing")
    bad_path = SigningPolicy.from_policy(make_policy(world.keys, public_keys=["keys/none.pem"]))
    with pytest.raises(PolicyError, match=r"public_keys\[0\]: public key file .*none\.pem"):
        bad_path.trusted_keys(home, "p: signing")


# ---------------------------------------------------------------------------- rollback


def test_rollback_restores_the_previous_champion_and_is_audited(
    world: World, cli: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = new_version(world, "rollback", 12), new_version(world, "rollback", 13)
    assert run_promotion(world, first, "run-rb-1")[0].verdict is Verdict.PASS
    assert run_promotion(world, second, "run-rb-2")[0].verdict is Verdict.PASS
    args = [
        "rollback",
        "--registered-model",
        "rollback",
        "--key",
        str(world.keys.public_path),
        "--tracking-uri",
        world.settings.tracking_uri,
        "--log",
        world.audit.uri,
        "--reason",
        "bad predictions",
    ]
    assert cli(args).code == 0
    assert "ROLLED BACK rollback@champion: v2 -> v1" in capsys.readouterr().out
    assert alias_version(world.client, "rollback", "champion") == first.version
    assert alias_version(world.client, "rollback", "previous-champion") is None
    last = world.audit.entries()[-1]
    assert last.kind == "rollback" and last.details["to_version"] == first.version
    assert last.details["reason"] == "bad predictions"

    check = verify_promotion(
        "rollback",
        "champion",
        world.keys.public_path.read_bytes(),
        world.settings.tracking_uri,
        audit_log_uri=world.audit.uri,
    )
    assert check.verified, check.reason
    assert cli(args).code == 1
    assert "nothing to roll back to" in capsys.readouterr().out
    assert world.audit.entries()[-1].kind == "refusal"
