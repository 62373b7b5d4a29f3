"""Red team, trust chain (second pass): records, model bytes, policy, rollback, audit undo.

The attacker can write the evidence/artifact store and the MLflow registry but holds no
signing key. Where a test re-signs a record with the world's key, it stands for a signer bug
or a parser differential (another verifier reading the same bytes differently): the verifier
must accept exactly one reading of exactly one kind of payload.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.errors import MLSecOpsError
from mlsecops_provider.core.evidence import EvidenceStore, Verdict
from mlsecops_provider.core.policy import parse_policy
from mlsecops_provider.core.promotion.record import TAG_EVIDENCE_SHA256, TAG_EVIDENCE_URI
from mlsecops_provider.core.promotion.rollback import rollback
from mlsecops_provider.core.promotion.signing import PublicKey, dsse_sign, envelope_bytes
from mlsecops_provider.core.promotion.verify import verify_promotion
from mlsecops_provider.core.tracking.registry import alias_version
from tests.core.promotion import test_promotion
from tests.core.promotion.test_promotion import (
    Candidate,
    World,
    artifact_dir,
    make_policy,
    new_version,
    run_promotion,
)

world = test_promotion.world  # the module-scoped fixture: MLflow, keys, evidence store


def _verify(world: World, name: str, alias: str = "champion", audit: bool = True) -> Any:
    return verify_promotion(
        name,
        alias,
        world.keys.public_path.read_bytes(),
        world.settings.tracking_uri,
        audit_log_uri=world.audit.uri if audit else None,
    )


def _promoted(world: World, name: str, count: int, seed: int) -> list[Candidate]:
    out = []
    for i in range(count):
        candidate = new_version(world, name, seed + i)
        result, _ = run_promotion(world, candidate, f"run-{name}-{i}")
        assert result.verdict is Verdict.PASS, result.message
        out.append(candidate)
    return out


def _resign(world: World, name: str, version: str, payload: bytes, payload_type: str) -> None:
    """Store an envelope over ``payload`` signed by the trusted key; point the tags at it."""
    envelope = dsse_sign(payload, world.key, payload_type)
    store = EvidenceStore(world.settings.evidence_uri)
    ref = store.put_bytes(store.uri_for("redteam", name, "promotion", f"v{version}.dsse.json"),
                          envelope_bytes(envelope))  # fmt: skip
    world.client.set_model_version_tag(name, version, TAG_EVIDENCE_URI, ref.uri)
    world.client.set_model_version_tag(name, version, TAG_EVIDENCE_SHA256, ref.sha256)


def _payload(world: World, name: str, version: str) -> bytes:
    tags = world.client.get_model_version(name, version).tags
    envelope = json.loads(Path(tags[TAG_EVIDENCE_URI].removeprefix("file://")).read_bytes())
    return base64.b64decode(envelope["payload"])


@pytest.fixture()
def one(world: World, request: pytest.FixtureRequest) -> Candidate:
    name = f"rt-{request.node.name.removeprefix('test_')[:40]}"
    return _promoted(world, name, 1, 70)[0]


# ---------------------------------------------------------------------------- DSSE / statement


def test_record_with_another_payload_type_is_refused(world: World, one: Candidate) -> None:
    """A trusted signature over the right statement but another payloadType is not a record."""
    _resign(world, one.name, one.version, _payload(world, one.name, one.version), "text/plain")
    check = _verify(world, one.name, audit=False)
    assert not check.verified and check.code == "bad_record", check.reason
    assert "payloadType" in check.reason


def test_statement_with_duplicate_keys_is_refused(world: World, one: Candidate) -> None:
    """Duplicate JSON keys (first-wins vs last-wins readers) make the statement unusable."""
    text = _payload(world, one.name, one.version).decode()
    forged = text.replace('"alias":"champion"', '"alias":"staging","alias":"champion"', 1)
    assert forged != text
    _resign(world, one.name, one.version, forged.encode(), "application/vnd.in-toto+json")
    check = _verify(world, one.name, audit=False)
    assert not check.verified and check.code == "bad_record", check.reason
    assert "duplicate key" in check.reason


def test_statement_with_a_predicate_of_the_wrong_type_is_refused(
    world: World, one: Candidate
) -> None:
    """A statement whose predicate is a list (or whose version is a number) fails cleanly."""
    statement = json.loads(_payload(world, one.name, one.version))
    for predicate in ([statement["predicate"]], {**statement["predicate"], "version": 1}):
        payload = json.dumps({**statement, "predicate": predicate}).encode()
        _resign(world, one.name, one.version, payload, "application/vnd.in-toto+json")
        check = _verify(world, one.name, audit=False)
        assert not check.verified and check.code == "bad_record", check.reason
        assert "predicate" in check.reason


# ---------------------------------------------------------------------------- model bytes


def test_files_renamed_keeping_the_digest_order_fail_verification(
    world: World, one: Candidate
) -> None:
    """The root digest does not bind names; the model signature does: a rename that keeps
    the file digests in the same order (conda.yaml -> model.skops, model.skops ->
    model.skopt) still fails verification."""
    folder = artifact_dir(one)
    (folder / "model.skops").rename(folder / "model.skopt")
    (folder / "conda.yaml").rename(folder / "model.skops")
    check = _verify(world, one.name, audit=False)
    assert not check.verified and check.code == "model_changed", check.reason
    assert "model signature" in check.reason  # not the root digest: that one still matches


def test_symlink_to_a_file_outside_the_model_folder_is_not_verified(
    world: World, one: Candidate, tmp_path: Path
) -> None:
    """A weights file replaced by a link that leaves the folder never verifies."""
    folder = artifact_dir(one)
    outside = tmp_path / "evil.skops"
    outside.write_bytes((folder / "model.skops").read_bytes())
    (folder / "model.skops").unlink()
    (folder / "model.skops").symlink_to(outside)
    outside.write_bytes(b"changed after the link was made")
    try:
        check = _verify(world, one.name, audit=False)
    except MLSecOpsError as err:  # could not decide: the CLI's exit 2, never VERIFIED
        assert "model.skops" in str(err) or "download" in str(err), err
        return
    assert not check.verified and check.code == "model_changed", check.reason


# ---------------------------------------------------------------------------- policy


def test_policy_with_no_required_gates_is_refused(world: World) -> None:
    """A policy that requires no gate cannot promote anything (fail closed)."""
    candidate = new_version(world, "rt-empty-policy", 75)
    base = make_policy(world.keys)
    empty = parse_policy({"required_gates": [], "signing": base.signing}, "empty.yaml", "cd" * 32)
    result, details = run_promotion(world, candidate, "run-empty", policy=empty)
    assert result.verdict is Verdict.FAIL
    assert any("requires no gate" in r for r in details["reasons"]), details["reasons"]


def test_gate_result_listed_twice_with_another_digest_is_refused(world: World) -> None:
    """Two results for one gate in a run (one passing, one not) are not merged silently."""
    from mlsecops_provider.core.promotion.checks import PromotionRequest
    from mlsecops_provider.core.promotion.gate import PromotionEnv, promote
    from tests.core.promotion.test_promotion import gate_run

    candidate = new_version(world, "rt-twice", 76)
    passing, provenance = gate_run(world, candidate, "run-twice")
    failing, _ = gate_run(world, candidate, "run-twice", {"dependency_audit": "fail"})
    request = PromotionRequest(
        candidate, [*passing, *failing, provenance], provenance, world.policy
    )
    result, details = promote(
        request, world.key, PromotionEnv.create(world.settings, "secure_training", "run-twice")
    )
    assert result.verdict is Verdict.FAIL
    assert any("two different results" in r for r in details["reasons"]), details["reasons"]


# ---------------------------------------------------------------------------- rollback / undo


def _rollback(world: World, name: str) -> Any:
    key = PublicKey.from_pem(world.keys.public_path.read_bytes())
    return rollback(world.settings, name, {key.key_id: key}, audit=world.audit, actor="redteam")


def test_rollback_to_a_version_signed_for_another_alias_is_refused(world: World) -> None:
    """previous-champion pointed at a version promoted for another alias does not move
    the champion there."""
    first, second = _promoted(world, "rt-rb-alias", 2, 77)
    other = new_version(world, "rt-rb-alias", 79)
    staging = make_policy(world.keys, alias="staging", previous_alias="previous-staging")
    result, _ = run_promotion(world, other, "run-rt-rb-staging", policy=staging)
    assert result.verdict is Verdict.PASS, result.message
    world.client.set_registered_model_alias(first.name, "previous-champion", other.version)
    done = _rollback(world, first.name)
    assert not done.rolled_back and "staging" in done.reason, done.reason
    assert alias_version(world.client, first.name, "champion") == second.version


def test_rollback_to_a_champion_older_than_the_replaced_one_is_refused(world: World) -> None:
    """previous-champion moved by hand to an older promoted version does not move the
    champion there: a rollback goes only to the version the champion's record replaced."""
    first, second, third = _promoted(world, "rt-rb-older", 3, 80)
    world.client.set_registered_model_alias(first.name, "previous-champion", first.version)
    done = _rollback(world, first.name)
    assert not done.rolled_back and f"replaced v{second.version}" in done.reason, done.reason
    assert alias_version(world.client, first.name, "champion") == third.version


def test_forged_undo_of_the_last_promotion_does_not_verify_a_hand_move(world: World) -> None:
    """A forged refusal that says the champion's promotion was undone (while the version
    still carries the record of that entry) does not make a hand move back verify."""
    first, second = _promoted(world, "rt-undo", 2, 83)
    entries = world.audit.entries()
    claim = next(
        e for e in reversed(entries)
        if e.kind == "promotion" and e.details.get("registered_model") == first.name
    )  # fmt: skip
    world.audit.append(
        "refusal",
        {**claim.details, "action": "promotion", "undoes": claim.seq, "reasons": ["forged"]},
    )
    world.client.set_registered_model_alias(first.name, "champion", first.version)
    check = _verify(world, first.name)
    assert not check.verified and check.code == "audit", check.reason
    assert "undo" in check.reason


def test_required_report_naming_the_candidate_and_another_model_is_refused(
    world: World,
) -> None:
    """A subject list with the candidate's digest and a second model digest is not accepted
    because one entry matches: every model subject must be the candidate."""
    import tempfile

    from mlsecops_provider.core.hashing import hash_path
    from mlsecops_provider.core.promotion.checks import PromotionRequest
    from mlsecops_provider.core.promotion.gate import PromotionEnv, promote
    from mlsecops_provider.core.tracking.registry import download_model
    from tests.core.promotion.test_promotion import DAG, gate_run

    candidate = new_version(world, "rt-two-models", 86)
    with tempfile.TemporaryDirectory() as tmp:
        model = hash_path(download_model(world.settings, candidate.source_uri, tmp)).root_digest
    subjects = {"model_scan": {"model": model, "model:other": "12" * 32}}
    verdicts = {"dependency_audit": "pass", "model_scan": "pass"}
    summaries, provenance = gate_run(
        world, candidate, "run-two-models", verdicts, subjects=subjects
    )
    policy = parse_policy(
        {"required_gates": ["dependency_audit", "model_scan"], "signing": world.policy.signing},
        "two-models.yaml",
        "ef" * 32,
    )
    request = PromotionRequest(candidate, [*summaries, provenance], provenance, policy)
    result, details = promote(
        request, world.key, PromotionEnv.create(world.settings, DAG, "run-two-models")
    )
    assert result.verdict is Verdict.FAIL
    assert any("12" * 32 in r for r in details["reasons"]), details["reasons"]


def test_envelope_with_a_duplicate_payload_key_is_refused(world: World, one: Candidate) -> None:
    """An envelope carrying a second, unsigned ``payload`` (read by first-wins parsers) is
    not a record, although the last payload's signature is valid."""
    tags = world.client.get_model_version(one.name, one.version).tags
    genuine = Path(tags[TAG_EVIDENCE_URI].removeprefix("file://")).read_text()
    other = base64.b64encode(b'{"forged": true}').decode()
    forged = genuine.replace('{"payload":', f'{{"payload":"{other}","payload":', 1)
    assert forged != genuine
    store = EvidenceStore(world.settings.evidence_uri)
    uri = store.uri_for("redteam", one.name, "promotion", "dup-payload.dsse.json")
    ref = store.put_bytes(uri, forged.encode())
    world.client.set_model_version_tag(one.name, one.version, TAG_EVIDENCE_URI, ref.uri)
    world.client.set_model_version_tag(one.name, one.version, TAG_EVIDENCE_SHA256, ref.sha256)
    check = _verify(world, one.name, audit=False)
    assert not check.verified and "duplicate key" in check.reason, check.reason


def test_rollback_with_the_champion_alias_deleted_is_refused(world: World) -> None:
    """Deleting the champion alias does not turn previous-champion into a free pass: a
    rollback needs a champion whose signed record names the target."""
    first, second = _promoted(world, "rt-rb-unset", 2, 88)
    world.client.delete_registered_model_alias(first.name, "champion")
    world.client.set_registered_model_alias(first.name, "previous-champion", first.version)
    done = _rollback(world, first.name)
    assert not done.rolled_back and "no champion to roll back from" in done.reason, done.reason
    assert alias_version(world.client, first.name, "champion") is None


def test_forged_undo_with_a_float_or_future_seq_does_not_hide_the_promotion(
    world: World,
) -> None:
    """``undoes: 7.0`` (equal to 7 in a set) or an undo of a later entry is no undo: the
    champion's promotion stays the last move, so the hand move back is named."""
    first, second = _promoted(world, "rt-undo-float", 2, 90)
    entries = world.audit.entries()
    claim = next(
        e
        for e in reversed(entries)
        if e.kind == "promotion" and e.details.get("registered_model") == first.name
    )
    world.client.set_registered_model_alias(first.name, "champion", first.version)
    for undoes in (float(claim.seq), len(entries) + 5):
        world.audit.append("refusal", {**claim.details, "undoes": undoes, "reasons": ["forged"]})
        check = _verify(world, first.name)
        assert not check.verified and check.code == "alias_moved", (undoes, check.reason)


def test_rename_after_verification_keeps_the_root_digest_but_not_the_verified_files(
    world: World, one: Candidate
) -> None:
    """TOCTOU between verify and load: a rename that keeps the digests in order keeps the
    root digest, so a loader must compare the verified files (names and digests) that
    ``verify_promotion`` returns, not the root digest alone."""
    import tempfile

    from mlsecops_provider.core.hashing import hash_path
    from mlsecops_provider.core.tracking.registry import download_model

    check = _verify(world, one.name, audit=False)
    assert check.verified and dict(check.files).keys() >= {"MLmodel", "model.skops"}
    folder = artifact_dir(one)
    (folder / "model.skops").rename(folder / "model.skopt")
    (folder / "conda.yaml").rename(folder / "model.skops")
    with tempfile.TemporaryDirectory() as tmp:  # what a loader reads after verification
        after = hash_path(download_model(world.settings, one.source_uri, tmp))
    assert after.root_digest == check.model_sha256  # the root digest does not see it
    assert tuple(sorted(after.files.items())) != check.files  # the verified files do
