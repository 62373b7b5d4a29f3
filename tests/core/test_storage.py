"""Storage backends: scheme dispatch, clear errors, atomic writes, listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops_provider.core.errors import ConfigError, DigestMismatchError, StorageError
from mlsecops_provider.core.storage import (
    LocalStorage,
    normalise_uri,
    read_verified,
    safe_segment,
    sha256_bytes,
    storage_for,
)


def test_unknown_scheme_names_the_uri() -> None:
    with pytest.raises(StorageError, match=r"gs://bucket/x: unknown URI scheme 'gs'"):
        storage_for("gs://bucket/x")


def test_missing_local_file_names_the_uri(tmp_path: Path) -> None:
    uri = (tmp_path / "absent.parquet").as_uri()
    with pytest.raises(StorageError, match=f"{uri}: no such file"):
        LocalStorage().read_bytes(uri)


def test_local_write_is_atomic_and_listable(tmp_path: Path) -> None:
    storage = LocalStorage()
    uri = (tmp_path / "a" / "b.bin").as_uri()
    storage.write_bytes(uri, b"one")
    storage.write_bytes(uri, b"two")
    assert storage.read_bytes(uri) == b"two"
    assert storage.list(tmp_path.as_uri()) == [uri]
    assert storage.exists(uri) and not storage.exists((tmp_path / "c").as_uri())


def test_read_verified_accepts_prefixed_digest_and_rejects_others(tmp_path: Path) -> None:
    uri = (tmp_path / "x").as_uri()
    LocalStorage().write_bytes(uri, b"payload")
    digest = sha256_bytes(b"payload")
    assert read_verified(LocalStorage(), uri, f"sha256:{digest}") == b"payload"
    with pytest.raises(DigestMismatchError, match="expected sha256:0000"):
        read_verified(LocalStorage(), uri, "0" * 64)


def test_s3_storage_round_trip_and_listing(s3_bucket: str) -> None:
    storage = storage_for(f"s3://{s3_bucket}/")
    storage.write_bytes(f"s3://{s3_bucket}/p/one.txt", b"1")
    storage.write_bytes(f"s3://{s3_bucket}/p/two.txt", b"2")
    assert storage.read_bytes(f"s3://{s3_bucket}/p/two.txt") == b"2"
    assert storage.list(f"s3://{s3_bucket}/p/") == [
        f"s3://{s3_bucket}/p/one.txt",
        f"s3://{s3_bucket}/p/two.txt",
    ]
    with pytest.raises(StorageError, match="NoSuchBucket"):
        storage.write_bytes("s3://no-such-bucket-here/x", b"x")


def test_paths_become_file_uris_and_segments_are_safe(tmp_path: Path) -> None:
    assert normalise_uri(str(tmp_path)) == tmp_path.as_uri()
    assert normalise_uri("s3://b/k") == "s3://b/k"
    assert safe_segment("manual__2026-01-01T00:00:00+00:00") == "manual__2026-01-01T00_00_00_00_00"
    with pytest.raises(ValueError):
        safe_segment("..")


def test_server_side_encryption_on_every_s3_write(
    s3_bucket: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from mlsecops_provider.core.evidence import EvidenceStore
    from mlsecops_provider.core.storage import sse_put_args

    monkeypatch.setenv("MLSECOPS_S3_SSE", "aws:kms")
    monkeypatch.setenv("MLSECOPS_S3_SSE_KMS_KEY_ID", "alias/mlsecops")
    store = EvidenceStore(f"s3://{s3_bucket}/evidence")
    ref = store.put_json(f"s3://{s3_bucket}/evidence/d/r/g/report.json", {"a": 1})
    head = boto3.client("s3", endpoint_url=moto_endpoint).head_object(
        Bucket=s3_bucket, Key=ref.uri.removeprefix(f"s3://{s3_bucket}/")
    )
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith("alias/mlsecops")
    assert sse_put_args({"MLSECOPS_S3_SSE": "AES256"}) == {"ServerSideEncryption": "AES256"}
    with pytest.raises(ConfigError, match="MLSECOPS_S3_SSE='DES'"):
        sse_put_args({"MLSECOPS_S3_SSE": "DES"})
