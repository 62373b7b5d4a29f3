"""The prediction log: Parquet batches in the evidence store, each batch's digest chained.

Layout under the log URI::

    <log>/batches/00000001.parquet ...   one batch of rows
    <log>/chain.jsonl                    one line per batch {seq, time, uri, sha256, rows,
                                         prev_hash, hash}; hash = SHA-256 of the line without
                                         ``hash`` (canonical JSON), prev_hash links the lines
    <log>/chain.head.json                last seq and hash (a deleted tail line is caught)

A reader verifies the chain, then reads every batch by its digest: an edited, inserted,
removed or reordered batch fails. Only the columns in :data:`LOG_COLUMNS` (and the input
columns the serving policy allows) are written: inputs are logged as a digest, never raw.
One server writes one log (give each replica its own URI).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import AuditLogError, DataError, NotFoundError
from mlsecops_provider.core.evidence import utcnow
from mlsecops_provider.core.storage import S3ClientFactory, read_verified, sha256_bytes, storage_for

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
GENESIS = "0" * 64
LOG_COLUMNS = {
    "request_id": "string",
    "row": "int64",
    "time": "string",
    "inputs_sha256": "string",
    "champion_version": "string",
    "champion_sha256": "string",
    "served_version": "string",
    "served_prediction": "string",
    "champion_prediction": "string",
    "champion_latency_ms": "float64",
    "champion_cpu_ms": "float64",
    "champion_error": "string",
    "fallback": "string",
    "out_of_profile": "bool",
    "shadow_version": "string",
    "shadow_sha256": "string",
    "shadow_prediction": "string",
    "shadow_latency_ms": "float64",
    "shadow_cpu_ms": "float64",
    "shadow_status": "string",
}
INPUT_PREFIX = "input."


def _canonical(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def _link(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(body)).hexdigest()


@dataclass(frozen=True)
class LogBatch:
    seq: int
    uri: str
    sha256: str
    rows: int
    time: str
    prev_hash: str
    hash: str


def verify_chain(data: bytes, head: Mapping[str, Any] | None) -> list[LogBatch]:
    """The batches of a chain file; AuditLogError on an edited, missing or reordered line."""
    batches: list[LogBatch] = []
    prev = GENESIS
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            entry = json.loads(raw)
            body = {k: entry[k] for k in ("seq", "time", "uri", "sha256", "rows", "prev_hash")}
        except (ValueError, KeyError, TypeError) as err:
            raise AuditLogError(f"chain line {number}: not a batch entry ({err})") from err
        if body["seq"] != number or body["prev_hash"] != prev:
            raise AuditLogError(f"chain line {number}: out of order or unlinked")
        if _link(body) != entry.get("hash"):
            raise AuditLogError(f"chain line {number}: hash does not match its content (edited)")
        batches.append(LogBatch(**body, hash=entry["hash"]))
        prev = entry["hash"]
    if head is not None:
        seq = head.get("seq")
        if not isinstance(seq, int) or seq > len(batches):
            raise AuditLogError(
                f"chain has {len(batches)} batches, its head says {seq} (truncated)"
            )
        if seq and batches[seq - 1].hash != head.get("hash"):
            raise AuditLogError(f"chain batch {seq} does not match the head file")
    return batches


class PredictionLog:
    """Buffers rows and writes them as chained Parquet batches (thread-safe)."""

    def __init__(
        self,
        uri: str,
        *,
        batch_rows: int = 500,
        flush_seconds: float = 5.0,
        input_columns: tuple[str, ...] = (),
        s3: S3ClientFactory | None = None,
    ) -> None:
        self.uri = uri.rstrip("/")
        self.chain_uri = f"{self.uri}/chain.jsonl"
        self.head_uri = f"{self.uri}/chain.head.json"
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.input_columns = tuple(input_columns)
        self.storage = storage_for(self.uri, s3)
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.batches_written = 0
        self.rows_written = 0
        self.write_errors = 0

    def start(self) -> None:
        self._chain()  # refuse to start on a broken chain
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, rows: list[dict[str, Any]]) -> None:
        allowed = set(LOG_COLUMNS) | {f"{INPUT_PREFIX}{c}" for c in self.input_columns}
        clean = [{k: v for k, v in row.items() if k in allowed} for row in rows]
        with self._lock:
            self._rows.extend(clean)
            full = len(self._rows) >= self.batch_rows
        if full:
            self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()

    def flush(self) -> None:
        """Write what is buffered (errors are logged and counted, rows are kept for a retry)."""
        with self._write_lock:
            with self._lock:
                rows, self._rows = self._rows, []
            while rows:
                chunk, rows = rows[: self.batch_rows], rows[self.batch_rows :]
                try:
                    self._write(chunk)
                except Exception as err:  # a store outage must not stop serving
                    self.write_errors += 1
                    log.error("prediction log %s: batch not written (%s)", self.uri, err)
                    with self._lock:
                        self._rows = chunk + rows + self._rows
                    return

    def _chain(self) -> tuple[bytes, list[LogBatch]]:
        head = _read_json(self.storage, self.head_uri)
        try:
            data = self.storage.read_bytes(self.chain_uri)
        except NotFoundError:
            data = b""
        return data, verify_chain(data, head)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        data, batches = self._chain()
        seq = len(batches) + 1
        batch_uri = f"{self.uri}/batches/{seq:08d}.parquet"
        payload = frame_bytes(rows, self.input_columns)
        self.storage.write_bytes(batch_uri, payload, "application/vnd.apache.parquet")
        body = {
            "seq": seq,
            "time": utcnow(),
            "uri": batch_uri,
            "sha256": sha256_bytes(payload),
            "rows": len(rows),
            "prev_hash": batches[-1].hash if batches else GENESIS,
        }
        line = _canonical({**body, "hash": _link(body)}) + b"\n"
        prefix = data if not data or data.endswith(b"\n") else data + b"\n"
        self.storage.write_bytes(self.chain_uri, prefix + line, "application/jsonl")
        head = {"seq": seq, "hash": _link(body)}
        self.storage.write_bytes(self.head_uri, _canonical(head), "application/json")
        self.batches_written += 1
        self.rows_written += len(rows)


def frame_bytes(rows: list[dict[str, Any]], input_columns: tuple[str, ...] = ()) -> bytes:
    """Rows as Parquet with the fixed log schema (missing values are nulls)."""
    import io

    import pandas as pd

    frame = pd.DataFrame(rows)
    for column, dtype in LOG_COLUMNS.items():
        if column not in frame.columns:
            frame[column] = None
        frame[column] = frame[column].astype("boolean" if dtype == "bool" else dtype)
    extra = [f"{INPUT_PREFIX}{c}" for c in input_columns if f"{INPUT_PREFIX}{c}" in frame.columns]
    buffer = io.BytesIO()
    frame[[*LOG_COLUMNS, *extra]].to_parquet(buffer, index=False)
    return buffer.getvalue()


def _read_json(storage: Any, uri: str) -> dict[str, Any] | None:
    try:
        loaded = json.loads(storage.read_bytes(uri))
    except NotFoundError:
        return None
    except ValueError as err:
        raise AuditLogError(f"{uri}: not valid JSON ({err})") from err
    return loaded if isinstance(loaded, dict) else {"seq": None}


def read_prediction_log(
    uri: str, s3: S3ClientFactory | None = None, missing_ok: bool = True
) -> pd.DataFrame:
    """Every row of a log, after its chain and each batch's digest verified.

    A log that does not exist (yet) is empty with ``missing_ok``, else NotFoundError.
    """
    import io

    import pandas as pd

    uri = uri.rstrip("/")
    storage = storage_for(uri, s3)
    head = _read_json(storage, f"{uri}/chain.head.json")
    try:
        data = storage.read_bytes(f"{uri}/chain.jsonl")
    except NotFoundError:
        if head and head.get("seq"):
            raise AuditLogError(f"{uri}: chain missing, but its head says {head['seq']}") from None
        if not missing_ok:
            raise NotFoundError(f"{uri}: no prediction log (no chain.jsonl)") from None
        data = b""
    frames = []
    for batch in verify_chain(data, head):
        if not batch.uri.startswith(f"{uri}/"):
            raise AuditLogError(f"{uri}: batch {batch.seq} points outside the log ({batch.uri})")
        raw = read_verified(storage, batch.uri, batch.sha256)
        try:
            frames.append(pd.read_parquet(io.BytesIO(raw)))
        except Exception as err:
            raise DataError(f"{batch.uri}: not a Parquet batch ({err})") from err
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in LOG_COLUMNS})
    return pd.concat(frames, ignore_index=True)
