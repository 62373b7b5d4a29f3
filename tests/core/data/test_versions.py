"""Dataset versions at a prefix: listing, newest, digests, and what lineage says was trained."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.data.versions import (
    VersionWatcher,
    list_versions,
    newest_version,
    object_sha256,
)
from mlsecops_provider.core.errors import StorageError
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import sha256_bytes
from mlsecops_provider.core.tracking.datasets import known_digests
from mlsecops_provider.include.generator import generate
from tests.sensors.helpers import log_training_run, unique


def _touch(path: Path, data: bytes, mtime: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path.as_uri()


def test_local_listing_skips_hidden_and_other_files_and_orders_by_mtime(tmp_path: Path) -> None:
    old = _touch(tmp_path / "a" / "batch_2.csv", b"x,y\n1,2\n", 1_000)
    new = _touch(tmp_path / "batch_1.parquet", b"PAR1", 2_000)
    _touch(tmp_path / ".batch_3.parquet.tmp", b"partial", 3_000)
    _touch(tmp_path / "_SUCCESS", b"", 3_000)
    _touch(tmp_path / "notes.txt", b"", 3_000)
    assert [v.uri for v in list_versions(tmp_path.as_uri())] == [old, new]
    newest = newest_version(tmp_path.as_uri())
    assert newest is not None and newest.uri == new and newest.size == 4
    assert newest_version((tmp_path / "absent").as_uri()) is None
    assert newest_version(old).uri == old  # type: ignore[union-attr]


def test_watcher_reports_new_unchanged_and_changed_versions(tmp_path: Path) -> None:
    watcher = VersionWatcher(tmp_path.as_uri())
    assert watcher.check(set()) is None
    uri = _touch(tmp_path / "b.csv", b"a\n1\n", 1_000)
    first = watcher.check(set())
    assert first is not None and first.to_xcom() == {"uri": uri, "sha256": sha256_bytes(b"a\n1\n")}
    assert watcher.check({first.sha256}) is None  # unchanged: trained on already
    _touch(tmp_path / "b.csv", b"a\n2\n", 2_000)
    changed = watcher.check({first.sha256})
    assert changed is not None and changed.sha256 == sha256_bytes(b"a\n2\n")
    assert changed.etag != first.etag


def test_s3_listing_digest_and_newest(s3_bucket: str) -> None:
    client = boto3.client("s3")
    client.put_object(Bucket=s3_bucket, Key="in/one.parquet", Body=b"one")
    client.put_object(Bucket=s3_bucket, Key="in/two.parquet", Body=b"two")
    client.put_object(Bucket=s3_bucket, Key="in/readme.md", Body=b"no")
    client.put_object(Bucket=s3_bucket, Key="other/three.parquet", Body=b"three")
    versions = list_versions(f"s3://{s3_bucket}/in/")
    assert {v.uri for v in versions} == {f"s3://{s3_bucket}/in/{n}.parquet" for n in ("one", "two")}
    assert all(v.etag and '"' not in v.etag for v in versions)
    newest = VersionWatcher(f"s3://{s3_bucket}/in/").check(set())
    assert newest is not None and newest.uri == f"s3://{s3_bucket}/in/two.parquet"  # same second
    assert newest.sha256 == sha256_bytes(b"two")
    assert object_sha256(f"s3://{s3_bucket}/in/one.parquet") == sha256_bytes(b"one")


def test_storage_errors_name_the_uri(moto_endpoint: str, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="s3://no-such-bucket-x/in/: cannot list S3 prefix"):
        list_versions("s3://no-such-bucket-x/in/")
    with pytest.raises(StorageError, match="unknown URI scheme 'gs'"):
        list_versions("gs://bucket/in/")
    with pytest.raises(StorageError, match="cannot read"):
        object_sha256((tmp_path / "absent.csv").as_uri())


def test_known_digests_come_from_the_training_experiment(tmp_path: Path) -> None:
    settings = Settings.from_env()
    experiment = unique("training-dag")
    assert known_digests(settings, experiment) == set()
    frame = generate(50, seed=3)
    raw = write_table(frame, (tmp_path / "raw.parquet").as_uri())
    trained = write_table(frame.head(40), (tmp_path / "trained.parquet").as_uri())
    log_training_run(settings, experiment, frame, raw, context="raw")
    log_training_run(settings, experiment, frame.head(40), trained)
    assert known_digests(settings, experiment) == {raw.sha256, trained.sha256}
    assert known_digests(settings, experiment, lookback_runs=1) == {trained.sha256}
