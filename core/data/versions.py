"""Dataset versions at a ``file://`` or ``s3://`` prefix, and whether the newest one is new.

A *version* is one object under the prefix (hidden files and other suffixes are ignored).
The newest is the one modified last (ties: the greatest URI). It is *new* when its SHA-256
is not among the datasets the training DAG's recent MLflow runs logged
(:func:`mlsecops_provider.core.tracking.datasets.known_digests`).
A new object with bytes already trained on is not new; a changed object (other ETag or
mtime, other bytes) is. Digests are cached by (URI, ETag) so an unchanged object is hashed
once per :class:`VersionWatcher`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from mlsecops_provider.core.errors import StorageError
from mlsecops_provider.core.storage import S3ClientFactory, _local_path, _s3_reason, _split_s3

log = logging.getLogger(__name__)

DEFAULT_SUFFIXES = (".parquet", ".csv")
CHUNK = 1 << 20


@dataclass(frozen=True)
class ObjectVersion:
    """One object under a prefix: URI, ETag (S3) or size-mtime stamp (files), size, mtime."""

    uri: str
    etag: str
    size: int
    modified: float


@dataclass(frozen=True)
class DatasetVersion:
    """A version with its digest; ``to_xcom()`` is what sensors return."""

    uri: str
    sha256: str
    etag: str
    size: int

    def to_xcom(self) -> dict[str, str]:
        return {"uri": self.uri, "sha256": self.sha256}


def _wanted(uri: str, suffixes: tuple[str, ...]) -> bool:
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    if not name or name.startswith((".", "_")):
        return False
    return not suffixes or name.lower().endswith(tuple(s.lower() for s in suffixes))


def _list_local(prefix_uri: str) -> list[ObjectVersion]:
    root = _local_path(prefix_uri)
    if root.is_file():
        paths = [root]
    elif root.is_dir():
        paths = [p for p in root.rglob("*") if p.is_file()]
    else:
        return []
    found = []
    for path in paths:
        try:
            st = path.stat()
        except FileNotFoundError:  # removed while listing
            continue
        etag = f"{st.st_size}-{st.st_mtime_ns}"
        found.append(ObjectVersion(path.as_uri(), etag, st.st_size, st.st_mtime))
    return found


def _list_s3(prefix_uri: str, client: Any) -> list[ObjectVersion]:
    bucket, prefix = _split_s3(prefix_uri)
    found = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found.append(
                    ObjectVersion(
                        f"s3://{bucket}/{item['Key']}",
                        str(item.get("ETag", "")).strip('"'),
                        int(item.get("Size", 0)),
                        item["LastModified"].timestamp(),
                    )
                )
    except Exception as err:  # botocore raises many types; all mean "cannot list"
        raise StorageError(f"{prefix_uri}: cannot list S3 prefix ({_s3_reason(err)})") from err
    return found


def _s3_client(factory: S3ClientFactory | None) -> Any:
    if factory is not None:
        return factory()
    import boto3

    return boto3.client("s3")


def list_versions(
    prefix_uri: str,
    s3_client_factory: S3ClientFactory | None = None,
    suffixes: tuple[str, ...] = DEFAULT_SUFFIXES,
) -> list[ObjectVersion]:
    """Objects under a prefix (or the object itself), oldest first; empty if there are none."""
    scheme = urlparse(prefix_uri).scheme
    if scheme == "file":
        found = _list_local(prefix_uri)
    elif scheme == "s3":
        found = _list_s3(prefix_uri, _s3_client(s3_client_factory))
    else:
        raise StorageError(
            f"{prefix_uri}: unknown URI scheme {scheme!r} (expected file:// or s3://)"
        )
    return sorted((v for v in found if _wanted(v.uri, suffixes)), key=lambda v: (v.modified, v.uri))


def newest_version(
    prefix_uri: str,
    s3_client_factory: S3ClientFactory | None = None,
    suffixes: tuple[str, ...] = DEFAULT_SUFFIXES,
) -> ObjectVersion | None:
    versions = list_versions(prefix_uri, s3_client_factory, suffixes)
    return versions[-1] if versions else None


def object_sha256(uri: str, s3_client_factory: S3ClientFactory | None = None) -> str:
    """SHA-256 of an object's bytes, streamed."""
    digest = hashlib.sha256()
    if urlparse(uri).scheme == "s3":
        bucket, key = _split_s3(uri)
        try:
            body = _s3_client(s3_client_factory).get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in body.iter_chunks(CHUNK):
                digest.update(chunk)
        except Exception as err:
            raise StorageError(f"{uri}: cannot read from S3 ({_s3_reason(err)})") from err
        return digest.hexdigest()
    path = _local_path(uri)
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as err:
        raise StorageError(f"{uri}: cannot read ({os.strerror(err.errno or 0)})") from err


@dataclass
class VersionWatcher:
    """Finds the newest version at a prefix and decides whether it is new.

    Keeps a (URI, ETag) -> SHA-256 cache, so polling an unchanged object lists but never
    re-reads it.
    """

    prefix_uri: str
    suffixes: tuple[str, ...] = DEFAULT_SUFFIXES
    s3_client_factory: S3ClientFactory | None = None
    _digests: dict[tuple[str, str], str] = field(default_factory=dict, init=False, repr=False)
    _client: Any = field(default=None, init=False, repr=False)

    def _client_once(self) -> Any:
        if self._client is None:
            self._client = _s3_client(self.s3_client_factory)
        return self._client

    def newest(self) -> DatasetVersion | None:
        found = newest_version(self.prefix_uri, self._client_once, self.suffixes)
        if found is None:
            return None
        key = (found.uri, found.etag)
        if key not in self._digests:
            self._digests = {key: object_sha256(found.uri, self._client_once)}
        return DatasetVersion(found.uri, self._digests[key], found.etag, found.size)

    def check(self, trained: set[str]) -> DatasetVersion | None:
        """The newest version if its digest is not in ``trained``, else None."""
        newest = self.newest()
        if newest is None:
            log.info("No dataset under %s yet", self.prefix_uri)
            return None
        if newest.sha256 in trained:
            log.info("Newest %s (sha256 %s) is already trained on", newest.uri, newest.sha256)
            return None
        log.info(
            "New dataset version %s (sha256 %s, etag %s)", newest.uri, newest.sha256, newest.etag
        )
        return newest
