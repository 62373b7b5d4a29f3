"""GateResult round trips and the evidence store's tamper detection on file:// and s3://."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from mlsecops_provider.core.errors import DataError, DigestMismatchError, StorageError
from mlsecops_provider.core.evidence import EvidenceStore, GateResult, Verdict


def _result(**changes: object) -> GateResult:
    base: dict[str, object] = {
        "gate": "data_validation",
        "verdict": "warn",
        "subjects": {"dataset": "ab" * 32},
        "metrics": {"rows": 10, "success_percent": 96.0, "per_column": {"a": 1}},
        "findings": [{"expectation": f"e{i}"} for i in range(15)],
        "tool_versions": {"great_expectations": "1.24.1"},
        "message": "1 warning",
    }
    base.update(changes)
    return GateResult(**base)  # type: ignore[arg-type]


def test_gate_result_json_round_trip() -> None:
    result = _result().finished()
    again = GateResult.from_json(result.to_json())
    assert again == result
    assert again.verdict is Verdict.WARN
    assert again.ended_at is not None


def test_summary_is_compact() -> None:
    summary = _result().summary()
    assert len(summary["findings"]) == 10
    assert summary["findings_total"] == 15
    assert "per_column" not in summary["metrics"]  # only scalars reach XCom
    assert summary["verdict"] == "warn"


def test_invalid_gate_result_is_rejected() -> None:
    with pytest.raises(ValueError, match="snake_case"):
        _result(gate="Bad Gate")
    with pytest.raises(ValueError):
        _result(verdict="maybe")
    with pytest.raises(DataError, match="unknown fields"):
        GateResult.from_dict({**_result().to_dict(), "extra": 1})


def test_blocking_verdicts_fail_closed() -> None:
    assert Verdict.FAIL.blocks and Verdict.ERROR.blocks
    assert not Verdict.PASS.blocks and not Verdict.WARN.blocks


def _round_trip_and_tamper(store: EvidenceStore, overwrite: object) -> None:
    stored = store.put_report(
        "secure_training", "manual__2026-01-01T00:00:00+00:00", _result(), {"x": 1}
    )
    assert stored.evidence_uri and stored.evidence_sha256
    assert ":" not in stored.evidence_uri.split("//", 1)[1]  # run id made path-safe
    result, details = store.read_report(stored.evidence_uri, stored.evidence_sha256)
    assert result.gate == "data_validation" and details == {"x": 1}
    overwrite(stored.evidence_uri)  # type: ignore[operator]
    with pytest.raises(DigestMismatchError) as caught:
        store.read_report(stored.evidence_uri, stored.evidence_sha256)
    assert stored.evidence_uri in str(caught.value)
    assert stored.evidence_sha256 in str(caught.value)


def test_file_store_round_trip_and_tamper_detection(tmp_path: Path) -> None:
    store = EvidenceStore((tmp_path / "evidence").as_uri())

    def tamper(uri: str) -> None:
        path = Path(uri.removeprefix("file://"))
        path.write_text(path.read_text().replace('"warn"', '"pass"'))

    _round_trip_and_tamper(store, tamper)
    assert not list((tmp_path / "evidence").rglob("*.tmp"))


def test_s3_store_round_trip_and_tamper_detection(s3_bucket: str, moto_endpoint: str) -> None:
    store = EvidenceStore(f"s3://{s3_bucket}/evidence")
    client = boto3.client("s3", endpoint_url=moto_endpoint)

    def tamper(uri: str) -> None:
        key = uri.removeprefix(f"s3://{s3_bucket}/")
        body = client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        client.put_object(Bucket=s3_bucket, Key=key, Body=body.replace(b'"warn"', b'"pass"'))

    _round_trip_and_tamper(store, tamper)


def test_missing_report_is_a_clear_error(tmp_path: Path, s3_bucket: str) -> None:
    with pytest.raises(StorageError, match="no such file"):
        EvidenceStore(tmp_path.as_uri()).read_report((tmp_path / "nope.json").as_uri(), "0" * 64)
    with pytest.raises(StorageError, match="NoSuchKey"):
        EvidenceStore(f"s3://{s3_bucket}").read_report(f"s3://{s3_bucket}/nope.json", "0" * 64)


def test_store_refuses_writes_outside_its_root(tmp_path: Path) -> None:
    store = EvidenceStore((tmp_path / "evidence").as_uri())
    with pytest.raises(StorageError, match="outside the evidence store"):
        store.put_bytes((tmp_path / "elsewhere.json").as_uri(), b"{}")


def test_subjects_are_parsed_into_kind_name_and_digest() -> None:
    from mlsecops_provider.core.evidence import Subject, parse_subjects

    digest = "ab" * 32
    subjects = {
        "model": digest,
        "dataset:raw": f"sha256:{digest}",
        "data": digest,
        "candidate": f"sha256:{digest}",
        "reference": digest,
        "sbom": digest,
        "path": "/tmp/model",  # not a digest: no subject
        "weird:x": digest,
    }
    found = {(s.kind, s.name) for s in parse_subjects(subjects)}
    assert found == {
        ("model", "model"),
        ("dataset", "raw"),
        ("dataset", "data"),
        ("model", "candidate"),
        ("reference", "reference"),
        ("sbom", "sbom"),
        ("other", "weird:x"),
    }
    result = GateResult(gate="g", verdict="pass", subjects={"model": digest}, dag_id="d")
    assert result.subject_refs() == [Subject("model", "model", digest)]
    assert GateResult.from_json(result.to_json()).dag_id == "d"
    assert result.summary()["dag_id"] == "d"


def test_evidence_segments_are_injective_and_safe() -> None:
    from mlsecops_provider.core.evidence import evidence_segment

    assert evidence_segment("secure_training") == "secure_training"
    assert evidence_segment("manual__2026-01-01T00:00:00+00:00") == (
        "manual__2026-01-01T00=3A00=3A00=2B00=3A00"
    )
    assert evidence_segment("..") == "=2E." and evidence_segment("a=b") == "a=3Db"
    assert len({evidence_segment(v) for v in ("a:b", "a_b", "a=3Ab", "a.b")}) == 4
    with pytest.raises(ValueError):
        evidence_segment("")
