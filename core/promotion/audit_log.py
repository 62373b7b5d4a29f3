"""Append-only, hash-chained audit log (JSON Lines) in the evidence store.

Each line is one entry ``{seq, time, kind, details, prev_hash, hash}``: ``kind`` is
``promotion``, ``refusal`` or ``rollback``; ``hash`` is the SHA-256 of the entry's canonical
JSON without ``hash``; ``prev_hash`` is the previous entry's hash (64 zeros for the first).
Editing, inserting or deleting a line breaks the chain; deleting the *last* lines is caught
by the head file beside the log (``<log>.head.json``: last ``seq`` and ``hash``) and, without
trusting that file, by anchors: the seq and hash of entries recorded where an attacker on the
evidence store cannot roll them back (the signed promotion record names the head it saw, the
model version's tags the promotion entry; see :func:`verify_chain`).

An append is read-verify-write with compare-and-set: the new log is written only if the log
is still what was read (``file://``: under an exclusive ``flock`` with the content digest
compared; ``s3://``: a conditional put, ``If-Match`` the ETag read, or ``If-None-Match: *``
for the first entry). A lost race re-reads and retries. A broken chain is never appended to.

Limit: whoever can rewrite both the log and its head can rewrite history; anchor the log in a
write-once store (S3 Object Lock, versioning) for that threat.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from threading import get_ident
from typing import Any, Protocol
from urllib.parse import urlparse

from mlsecops_provider.core.errors import (
    AuditLogError,
    ConcurrentUpdateError,
    NotFoundError,
    StorageError,
)
from mlsecops_provider.core.evidence import utcnow
from mlsecops_provider.core.storage import (
    S3ClientFactory,
    _local_path,
    _s3_reason,
    _split_s3,
    default_s3_client,
    sha256_bytes,
    sse_put_args,
    storage_for,
)

log = logging.getLogger(__name__)

KINDS = ("promotion", "refusal", "rollback")
GENESIS = "0" * 64
AUDIT_LOG_PATH = "audit/audit.jsonl"
APPEND_ATTEMPTS = 8


def default_log_uri(evidence_root: str) -> str:
    return f"{evidence_root.rstrip('/')}/{AUDIT_LOG_PATH}"


def _canonical(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: str
    kind: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "kind": self.kind,
            "details": dict(self.details),
            "prev_hash": self.prev_hash,
        }

    def computed_hash(self) -> str:
        return hashlib.sha256(_canonical(self.body())).hexdigest()

    def line(self) -> bytes:
        return _canonical({**self.body(), "hash": self.hash}) + b"\n"


@dataclass(frozen=True)
class ChainReport:
    """The outcome of :func:`verify_chain`."""

    ok: bool
    entries: list[AuditEntry] = field(default_factory=list)
    problem: str = ""
    head_lag: int = 0

    @property
    def last(self) -> AuditEntry | None:
        return self.entries[-1] if self.entries else None


def _parse_line(number: int, raw: bytes) -> AuditEntry:
    try:
        data = json.loads(raw)
        entry = AuditEntry(**data)
    except (ValueError, TypeError) as err:
        raise AuditLogError(f"line {number}: not an audit entry ({err})") from err
    if entry.kind not in KINDS or type(entry.seq) is not int:  # bool is an int: not a seq
        raise AuditLogError(f"line {number}: bad kind {entry.kind!r} or seq {entry.seq!r}")
    if not isinstance(entry.details, dict) or not all(
        isinstance(v, str) for v in (entry.time, entry.prev_hash, entry.hash)
    ):
        raise AuditLogError(f"line {number}: details is not an object or a field is not text")
    return entry


def verify_chain(
    data: bytes,
    head: Mapping[str, Any] | None = None,
    anchors: Sequence[Anchor] = (),
) -> ChainReport:
    """Check every line's hash and link; with ``head``, also that no tail line is missing.

    Trailing whitespace (a final blank line, an editor's newline) is not corruption; a blank
    line between entries is. Each anchor (an entry's seq and hash kept outside the evidence
    store: the signed promotion record, the model version's tags) must be in the log, so a
    truncated log is caught even when its head file was deleted or rolled back too.
    """
    entries: list[AuditEntry] = []
    prev = GENESIS
    try:
        for number, raw in enumerate(data.rstrip().splitlines(), start=1):
            entry = _parse_line(number, raw)
            if entry.seq != number:
                raise AuditLogError(f"line {number}: seq {entry.seq}, expected {number}")
            if entry.prev_hash != prev:
                raise AuditLogError(f"line {number}: prev_hash does not match line {number - 1}")
            if entry.computed_hash() != entry.hash:
                raise AuditLogError(f"line {number}: hash does not match its content (edited)")
            entries.append(entry)
            prev = entry.hash
        lag = _check_head(entries, head)
        _check_anchors(entries, anchors)
    except AuditLogError as err:
        return ChainReport(ok=False, entries=entries, problem=str(err))
    return ChainReport(ok=True, entries=entries, head_lag=lag)


def _check_head(entries: list[AuditEntry], head: Mapping[str, Any] | None) -> int:
    if head is None:
        return 0
    seq, digest = head.get("seq"), head.get("hash")
    if not isinstance(seq, int) or seq > len(entries):
        raise AuditLogError(
            f"log has {len(entries)} entries but its head says seq {seq} (truncated)"
        )
    if seq and entries[seq - 1].hash != digest:
        raise AuditLogError(f"entry {seq} does not match the hash in the head file")
    return len(entries) - seq  # > 0 only if a writer stopped between log and head


@dataclass(frozen=True)
class Anchor:
    """An entry's seq and hash recorded outside the log, and where (for the message)."""

    seq: int
    hash: str
    source: str


def _check_anchors(entries: list[AuditEntry], anchors: Sequence[Anchor]) -> None:
    for anchor in sorted(anchors, key=lambda a: -a.seq):
        if anchor.seq > len(entries):
            raise AuditLogError(
                f"log has {len(entries)} entries but {anchor.source} records entry "
                f"#{anchor.seq} (truncated)"
            )
        if anchor.seq >= 1 and entries[anchor.seq - 1].hash != anchor.hash:
            raise AuditLogError(
                f"entry #{anchor.seq} does not have the hash {anchor.source} records (rewritten)"
            )


class PreconditionFailed(AuditLogError):
    """A conditional append found the log in a state that refuses the new entry."""


Precondition = Callable[[list[AuditEntry]], str | None]


# ---------------------------------------------------------------------------- backends


class _Backend(Protocol):
    def read(self) -> tuple[bytes, str | None]:
        """The bytes and a version token (None: the object does not exist)."""

    def write_if(self, data: bytes, token: str | None) -> None:
        """Write only if the object still has ``token``; else ConcurrentUpdateError."""


class _LocalBackend:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.path = _local_path(uri)

    def read(self) -> tuple[bytes, str | None]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return b"", None
        except OSError as err:
            raise StorageError(f"{self.uri}: cannot read ({err.strerror})") from err
        return data, sha256_bytes(data)

    def write_if(self, data: bytes, token: str | None) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if self.read()[1] != token:
                    raise ConcurrentUpdateError(f"{self.uri}: changed since it was read")
                tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{get_ident()}.tmp")
                with open(tmp, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class _S3Backend:
    def __init__(self, uri: str, client_factory: S3ClientFactory) -> None:
        self.uri = uri
        self.bucket, self.key = _split_s3(uri)
        self.client = client_factory()
        self.put_args = sse_put_args()  # the same server-side encryption as every other write

    def read(self) -> tuple[bytes, str | None]:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key)
            return bytes(response["Body"].read()), str(response["ETag"])
        except Exception as err:
            reason = _s3_reason(err)
            if reason.startswith("NoSuchKey"):
                return b"", None
            raise StorageError(f"{self.uri}: cannot read from S3 ({reason})") from err

    def write_if(self, data: bytes, token: str | None) -> None:
        condition = {"IfMatch": token} if token else {"IfNoneMatch": "*"}
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=data,
                ContentType="application/jsonl",
                **self.put_args,
                **condition,
            )
        except Exception as err:
            reason = _s3_reason(err)
            if reason.startswith(("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey")):
                raise ConcurrentUpdateError(f"{self.uri}: changed since it was read") from err
            raise StorageError(f"{self.uri}: cannot write to S3 ({reason})") from err


# ---------------------------------------------------------------------------- the log


class AuditLog:
    """The hash-chained log at ``uri`` (``file://`` or ``s3://``) and its head file."""

    def __init__(self, uri: str, s3_client_factory: S3ClientFactory | None = None) -> None:
        self.uri = uri
        self.head_uri = f"{uri}.head.json"
        self._head_storage = storage_for(self.head_uri, s3_client_factory)
        scheme = urlparse(uri).scheme
        if scheme == "s3":
            self._backend: _Backend = _S3Backend(uri, s3_client_factory or default_s3_client)
        elif scheme == "file":
            self._backend = _LocalBackend(uri)
        else:
            raise StorageError(f"{uri}: unknown URI scheme {scheme!r} (expected file:// or s3://)")

    def _head(self) -> dict[str, Any] | None:
        try:
            loaded = json.loads(self._head_storage.read_bytes(self.head_uri))
        except NotFoundError:
            return None
        except ValueError as err:
            raise AuditLogError(f"{self.head_uri}: not valid JSON ({err})") from err
        return loaded if isinstance(loaded, dict) else {"seq": None}

    def verify(self, anchors: Sequence[Anchor] = ()) -> ChainReport:
        """Read the log and its head and check the chain (an absent log is an empty one)."""
        head = self._head()  # before the log: the head is written after it
        data, token = self._backend.read()
        if token is None and head and head.get("seq"):
            return ChainReport(
                ok=False, problem=f"{self.uri}: missing, but its head says seq {head['seq']}"
            )
        return verify_chain(data, head, anchors)

    def entries(self) -> list[AuditEntry]:
        report = self.verify()
        if not report.ok:
            raise AuditLogError(f"{self.uri}: chain broken: {report.problem}")
        return report.entries

    def append(
        self,
        kind: str,
        details: Mapping[str, Any],
        *,
        attempts: int = APPEND_ATTEMPTS,
        before_write: Callable[[], None] | None = None,
        precondition: Precondition | None = None,
    ) -> AuditEntry:
        """Append one entry (read, verify, compare-and-set write; retried on a lost race).

        ``precondition`` sees the verified entries of every attempt; a reason it returns
        raises :class:`PreconditionFailed` (nothing written). With the compare-and-set write
        that makes the append a linearisation point: of two conditional appends racing, the
        second re-reads the first's entry before it can write.
        """
        if kind not in KINDS:
            raise ValueError(f"audit kind {kind!r} is not one of {KINDS}")
        for attempt in range(1, attempts + 1):
            try:
                entry = self._append_once(kind, details, before_write, precondition)
            except ConcurrentUpdateError:
                if attempt == attempts:
                    raise
                log.info("%s changed while appending; retry %d", self.uri, attempt)
                time.sleep(random.uniform(0.01, 0.05) * attempt)
                continue
            return entry
        raise AssertionError("unreachable")

    def _append_once(
        self,
        kind: str,
        details: Mapping[str, Any],
        before_write: Callable[[], None] | None,
        precondition: Precondition | None = None,
    ) -> AuditEntry:
        head = self._head()
        data, token = self._backend.read()
        report = verify_chain(data, head)
        if not report.ok:
            raise AuditLogError(
                f"{self.uri}: refusing to append to a broken chain: {report.problem}"
            )
        problem = precondition(report.entries) if precondition else None
        if problem:
            raise PreconditionFailed(problem)
        last = report.last
        entry = AuditEntry(
            seq=(last.seq if last else 0) + 1,
            time=utcnow(),
            kind=kind,
            details=json.loads(_canonical(details)),
            prev_hash=last.hash if last else GENESIS,
        )
        entry = AuditEntry(**{**entry.body(), "hash": entry.computed_hash()})
        if before_write is not None:
            before_write()
        kept = data.rstrip()  # trailing whitespace is not an entry
        prefix = kept + b"\n" if kept else b""
        self._backend.write_if(prefix + entry.line(), token)
        head = {"seq": entry.seq, "hash": entry.hash, "time": entry.time}
        self._head_storage.write_bytes(self.head_uri, _canonical(head), "application/json")
        log.info("Audit %s #%d appended to %s", kind, entry.seq, self.uri)
        return entry


def local_log_path(uri: str) -> Path:
    """The file behind a ``file://`` log URI (for tools and tests)."""
    return _local_path(uri)
