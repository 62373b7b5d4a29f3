"""The hash-chained audit log: tamper evidence and compare-and-set appends (file:// and s3://)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.promotion.audit_log import (
    GENESIS,
    AuditLog,
    AuditLogError,
    ConcurrentUpdateError,
    local_log_path,
)


def _log(tmp_path: Path) -> AuditLog:
    return AuditLog((tmp_path / "audit" / "audit.jsonl").as_uri())


def _filled(tmp_path: Path, n: int = 3) -> AuditLog:
    audit = _log(tmp_path)
    for i in range(n):
        audit.append("promotion" if i % 2 == 0 else "refusal", {"version": str(i + 1)})
    return audit


def _lines(audit: AuditLog) -> list[str]:
    return local_log_path(audit.uri).read_text().splitlines()


def _write(audit: AuditLog, lines: list[str]) -> None:
    local_log_path(audit.uri).write_text("".join(f"{line}\n" for line in lines))


def test_entries_are_chained_and_verify(tmp_path: Path) -> None:
    audit = _filled(tmp_path)
    entries = audit.entries()
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))
    assert [e.kind for e in entries] == ["promotion", "refusal", "promotion"]
    assert audit.verify().ok


def test_an_edited_line_is_detected(tmp_path: Path) -> None:
    audit = _filled(tmp_path)
    lines = _lines(audit)
    entry = json.loads(lines[1])
    entry["details"]["version"] = "99"
    _write(audit, [lines[0], json.dumps(entry, sort_keys=True), lines[2]])
    report = audit.verify()
    assert not report.ok and "line 2: hash does not match" in report.problem


def test_an_edited_line_with_a_recomputed_hash_breaks_the_next_link(tmp_path: Path) -> None:
    from mlsecops_provider.core.promotion.audit_log import AuditEntry

    audit = _filled(tmp_path)
    lines = _lines(audit)
    data = json.loads(lines[1])
    data["details"] = {"version": "99"}
    forged = AuditEntry(**{**data, "hash": ""})
    forged = AuditEntry(**{**forged.body(), "hash": forged.computed_hash()})
    _write(audit, [lines[0], forged.line().decode().strip(), lines[2]])
    report = audit.verify()
    assert not report.ok and "line 3: prev_hash" in report.problem


def test_a_deleted_middle_or_last_line_is_detected(tmp_path: Path) -> None:
    audit = _filled(tmp_path)
    lines = _lines(audit)
    _write(audit, [lines[0], lines[2]])
    assert "line 2: seq 3" in audit.verify().problem
    _write(audit, lines[:2])
    report = audit.verify()
    assert not report.ok and "truncated" in report.problem
    with pytest.raises(AuditLogError, match="broken chain"):
        audit.append("rollback", {"version": "1"})


def test_compare_and_set_retries_after_a_concurrent_append(tmp_path: Path) -> None:
    audit = _filled(tmp_path, 1)
    rival = _log(tmp_path)
    raced = []

    def rival_appends_first() -> None:
        if not raced:
            raced.append(rival.append("refusal", {"by": "rival"}))

    entry = audit.append("promotion", {"by": "us"}, before_write=rival_appends_first)
    assert entry.seq == 3 and raced[0].seq == 2
    assert [e.details.get("by") for e in audit.entries()] == [None, "rival", "us"]

    with pytest.raises(ConcurrentUpdateError):
        audit.append(
            "promotion",
            {"by": "us"},
            attempts=1,
            before_write=lambda: rival.append("refusal", {"by": "rival"}),
        )
    assert audit.verify().ok


def test_parallel_appends_from_threads_keep_one_chain(tmp_path: Path) -> None:
    audit = _log(tmp_path)
    threads = [
        threading.Thread(target=_log(tmp_path).append, args=("promotion", {"worker": i}))
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = audit.entries()
    assert sorted(e.details["worker"] for e in entries) == list(range(8))


def test_s3_log_uses_conditional_puts(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    monkeypatch.setenv("MLSECOPS_S3_SSE", "AES256")
    uri = f"s3://{s3_bucket}/evidence/audit/audit.jsonl"
    audit, rival = AuditLog(uri), AuditLog(uri)
    audit.append("promotion", {"version": "1"})
    raced = []

    def rival_appends_first() -> None:
        if not raced:
            raced.append(rival.append("refusal", {"version": "2"}))

    audit.append("rollback", {"version": "3"}, before_write=rival_appends_first)
    assert [e.kind for e in audit.entries()] == ["promotion", "refusal", "rollback"]

    client = boto3.client("s3")
    key = "evidence/audit/audit.jsonl"
    assert client.head_object(Bucket=s3_bucket, Key=key)["ServerSideEncryption"] == "AES256"
    body = client.get_object(Bucket=s3_bucket, Key=key)["Body"].read().splitlines()
    client.put_object(Bucket=s3_bucket, Key=key, Body=b"\n".join(body[:2]) + b"\n")
    assert "truncated" in audit.verify().problem


def test_cli_audit_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlsecops_provider.core.cli.promotion_cmd import run_audit_verify

    audit = _filled(tmp_path)
    args = _Args(log=audit.uri, tracking_uri=None, no_registry=True)
    assert run_audit_verify(args) == 0
    assert "OK" in capsys.readouterr().out
    lines = _lines(audit)
    _write(audit, [lines[0], lines[2]])
    assert run_audit_verify(args) == 1
    assert "BROKEN" in capsys.readouterr().out


class _Args:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def test_trailing_whitespace_is_not_corruption_and_appends_continue(tmp_path: Path) -> None:
    audit = _filled(tmp_path, 2)
    path = local_log_path(audit.uri)
    path.write_bytes(path.read_bytes() + b"\n\n  \n")
    assert audit.verify().ok
    audit.append("refusal", {"version": "3"})
    assert [e.seq for e in audit.entries()] == [1, 2, 3]
    assert b"\n\n" not in path.read_bytes()


def test_anchors_catch_truncation_without_the_head_file(tmp_path: Path) -> None:
    from mlsecops_provider.core.promotion.audit_log import Anchor

    audit = _filled(tmp_path, 3)
    last = audit.entries()[-1]
    anchor = Anchor(last.seq, last.hash, "the test's tags")
    assert audit.verify([anchor]).ok
    _write(audit, _lines(audit)[:2])
    Path(f"{local_log_path(audit.uri)}.head.json").unlink()
    assert audit.verify().ok  # the head file was the only other witness
    report = audit.verify([anchor])
    assert not report.ok and "the test's tags records entry #3 (truncated)" in report.problem
    assert "rewritten" in audit.verify([Anchor(2, "0" * 64, "x")]).problem


def test_a_failed_precondition_appends_nothing(tmp_path: Path) -> None:
    from mlsecops_provider.core.promotion.audit_log import PreconditionFailed

    audit = _filled(tmp_path, 1)
    with pytest.raises(PreconditionFailed, match="no"):
        audit.append("promotion", {}, precondition=lambda entries: "no")
    assert len(audit.entries()) == 1
    audit.append("promotion", {}, precondition=lambda entries: None)
    assert len(audit.entries()) == 2
