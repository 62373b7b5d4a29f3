"""Read and write bytes at ``file://`` and ``s3://`` URIs.

One small interface (:class:`Storage`) and two implementations. Writes are atomic: a local
file is written beside its target and renamed; an S3 ``put_object`` is atomic by itself.
The S3 client comes from a factory so that Airflow tasks can pass one built from an
Airflow AWS connection while the CLI uses boto3's default chain (``AWS_*`` variables,
including ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from mlsecops_provider.core.errors import (
    ConfigError,
    DigestMismatchError,
    NotFoundError,
    StorageError,
)

S3ClientFactory = Callable[[], Any]
CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def safe_segment(value: str) -> str:
    """Make a DAG id, run id or gate name safe as one path / S3 key segment."""
    cleaned = re.sub(r"[^A-Za-z0-9._=-]+", "_", value).strip("._")
    if not cleaned:
        raise ValueError(f"{value!r} gives an empty path segment")
    return cleaned


class Storage(Protocol):
    """What every backend offers."""

    def read_bytes(self, uri: str) -> bytes: ...

    def write_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> None: ...

    def write_file(self, uri: str, path: Path, content_type: str | None = None) -> None: ...

    def read_file(self, uri: str, path: Path) -> str:
        """Copy ``uri`` to the local file ``path`` in one streamed pass; its SHA-256."""
        ...

    def exists(self, uri: str) -> bool: ...

    def list(self, prefix_uri: str) -> list[str]: ...


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        raise StorageError(f"{uri}: file:// URIs must be absolute paths on this host")
    return Path(unquote(parsed.path))


@contextlib.contextmanager
def _local_read_errors(uri: str) -> Iterator[None]:
    """A failed local read as the :class:`StorageError` that names ``uri``."""
    try:
        yield
    except FileNotFoundError as err:
        raise NotFoundError(f"{uri}: no such file") from err
    except IsADirectoryError as err:
        raise StorageError(f"{uri}: is a directory, expected a file") from err
    except OSError as err:
        raise StorageError(f"{uri}: cannot read ({err.strerror or err})") from err


class LocalStorage:
    """``file://`` URIs (and plain absolute paths)."""

    def read_bytes(self, uri: str) -> bytes:
        with _local_read_errors(uri):
            return _local_path(uri).read_bytes()

    def write_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> None:
        path = _local_path(uri)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except OSError as err:
            raise StorageError(f"{uri}: cannot write ({err.strerror})") from err

    def write_file(self, uri: str, path: Path, content_type: str | None = None) -> None:
        """Copy the local file ``path`` to ``uri`` (streamed; replaced atomically)."""
        target = _local_path(uri)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            os.close(fd)
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        except OSError as err:
            raise StorageError(f"{uri}: cannot write ({err.strerror})") from err

    def read_file(self, uri: str, path: Path) -> str:
        """Regular files only: a FIFO (which would block the open) or a device (endless
        bytes) is refused before anything is read."""
        with _local_read_errors(uri), _open_regular(uri, _local_path(uri)) as source:
            return _copy_hashed(source, path)

    def exists(self, uri: str) -> bool:
        return _local_path(uri).is_file()

    def list(self, prefix_uri: str) -> list[str]:
        root = _local_path(prefix_uri)
        if not root.exists():
            return []
        if root.is_file():
            return [root.as_uri()]
        return sorted(
            p.as_uri() for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
        )


def _split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if not parsed.netloc:
        raise StorageError(f"{uri}: s3:// URI has no bucket")
    return parsed.netloc, parsed.path.lstrip("/")


SSE_MODES = ("AES256", "aws:kms")


def sse_put_args(env: dict[str, str] | None = None) -> dict[str, str]:
    """Server-side encryption for every S3 write, from ``MLSECOPS_S3_SSE`` (``AES256`` or
    ``aws:kms``) and ``MLSECOPS_S3_SSE_KMS_KEY_ID``."""
    env = dict(os.environ if env is None else env)
    mode = env.get("MLSECOPS_S3_SSE", "")
    key_id = env.get("MLSECOPS_S3_SSE_KMS_KEY_ID", "")
    if not mode and not key_id:
        return {}
    if key_id and mode in ("", "aws:kms"):
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id}
    if mode not in SSE_MODES or key_id:
        raise ConfigError(
            f"MLSECOPS_S3_SSE={mode!r}: expected one of {SSE_MODES}"
            + (" (a KMS key id needs aws:kms)" if key_id else "")
        )
    return {"ServerSideEncryption": mode}


def default_s3_client() -> Any:
    import boto3

    return boto3.client("s3")


class S3Storage:
    """``s3://bucket/key`` URIs through boto3.

    Every write carries ``put_args`` (default: the server-side encryption settings from the
    environment, see :func:`sse_put_args`).
    """

    def __init__(
        self,
        client_factory: S3ClientFactory = default_s3_client,
        put_args: dict[str, str] | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self._put_args = dict(sse_put_args() if put_args is None else put_args)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = _split_s3(uri)
        try:
            return bytes(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except Exception as err:  # botocore raises many types; all mean "cannot read"
            raise _read_error(uri, err) from err

    def read_file(self, uri: str, path: Path) -> str:
        bucket, key = _split_s3(uri)
        try:
            return _copy_hashed(self.client.get_object(Bucket=bucket, Key=key)["Body"], path)
        except StorageError:  # the local copy could not be written
            raise
        except Exception as err:  # botocore raises many types (timeouts are OSErrors too)
            raise _read_error(uri, err) from err

    def write_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> None:
        bucket, key = _split_s3(uri)
        extra = dict(self._put_args)
        if content_type:
            extra["ContentType"] = content_type
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=data, **extra)
        except Exception as err:
            raise StorageError(f"{uri}: cannot write to S3 ({_s3_reason(err)})") from err

    def write_file(self, uri: str, path: Path, content_type: str | None = None) -> None:
        """Upload the local file ``path`` (boto3's managed transfer: multipart when big)."""
        bucket, key = _split_s3(uri)
        extra = dict(self._put_args)
        if content_type:
            extra["ContentType"] = content_type
        try:
            self.client.upload_file(str(path), bucket, key, ExtraArgs=extra or None)
        except Exception as err:
            raise StorageError(f"{uri}: cannot write to S3 ({_s3_reason(err)})") from err

    def exists(self, uri: str) -> bool:
        bucket, key = _split_s3(uri)
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except Exception:
            return False
        return True

    def list(self, prefix_uri: str) -> list[str]:
        bucket, prefix = _split_s3(prefix_uri)
        try:
            return sorted(self._iter_keys(bucket, prefix))
        except Exception as err:
            raise StorageError(f"{prefix_uri}: cannot list S3 prefix ({_s3_reason(err)})") from err

    def _iter_keys(self, bucket: str, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield f"s3://{bucket}/{item['Key']}"


def _read_error(uri: str, err: Exception) -> StorageError:
    reason = _s3_reason(err)
    kind = NotFoundError if reason.startswith(("NoSuchKey", "NoSuchBucket")) else StorageError
    return kind(f"{uri}: cannot read from S3 ({reason})")


def _open_regular(uri: str, path: Path) -> Any:
    """``path`` opened for reading if it is a regular file (without blocking on a FIFO)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise StorageError(f"{uri}: not a regular file (FIFO, socket or device); refused")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _copy_hashed(source: Any, path: Path) -> str:
    """Copy the readable ``source`` to ``path``; the SHA-256 of what was copied. A local
    write that fails is a :class:`StorageError` naming ``path`` (source errors pass as-is)."""
    digest = hashlib.sha256()
    try:
        out = path.open("wb")
    except OSError as err:
        raise StorageError(f"{path}: cannot write the private copy ({err.strerror})") from err
    with out:
        for piece in iter(lambda: source.read(CHUNK), b""):
            digest.update(piece)
            try:
                out.write(piece)
            except OSError as err:
                raise StorageError(
                    f"{path}: cannot write the private copy ({err.strerror or err})"
                ) from err
    return digest.hexdigest()


def _s3_reason(err: Exception) -> str:
    response = getattr(err, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code')}: {error.get('Message')}"
    return f"{type(err).__name__}: {err}"


def normalise_uri(uri_or_path: str) -> str:
    """Accept a plain local path as a ``file://`` URI; leave other URIs as they are."""
    if "://" not in uri_or_path:
        return Path(uri_or_path).expanduser().resolve().as_uri()
    return uri_or_path


def storage_for(
    uri: str,
    s3_client_factory: S3ClientFactory | None = None,
    s3_put_args: dict[str, str] | None = None,
) -> Storage:
    """Pick the backend for a URI's scheme; an unknown scheme is an error that names it."""
    scheme = urlparse(uri).scheme
    if scheme == "file":
        return LocalStorage()
    if scheme == "s3":
        return S3Storage(s3_client_factory or default_s3_client, s3_put_args)
    raise StorageError(f"{uri}: unknown URI scheme {scheme!r} (expected file:// or s3://)")


def read_verified(storage: Storage, uri: str, expected_sha256: str | None) -> bytes:
    """Read a URI and check its SHA-256; a mismatch names the URI and both digests."""
    data = storage.read_bytes(uri)
    if expected_sha256 is not None:
        actual = sha256_bytes(data)
        if actual != _bare(expected_sha256):
            raise DigestMismatchError(uri, _bare(expected_sha256), actual)
    return data


def fetch_verified(
    uri: str,
    expected_sha256: str | None,
    path: Path,
    factory: S3ClientFactory | None = None,
) -> str:
    """Copy ``uri`` to the private local file ``path`` while hashing it and check the digest:
    what is read afterwards is the copy, the bytes that were hashed, whatever happens to the
    source meanwhile. Returns the SHA-256."""
    digest = storage_for(uri, factory).read_file(uri, path)
    if expected_sha256 is not None and digest != _bare(expected_sha256):
        raise DigestMismatchError(uri, _bare(expected_sha256), digest)
    return digest


def _bare(digest: str) -> str:
    return digest.split(":", 1)[1] if digest.startswith("sha256:") else digest
