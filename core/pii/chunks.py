"""Chunked input and output for de-identification, so that memory stays bounded.

* :func:`open_source` copies the input (local or ``s3://``) in 1 MiB pieces to a private
  temporary file while hashing it (checking the expected digest before anything is parsed;
  only the copy is read) and then yields chunks of ``chunk_rows`` rows (the last
  may be shorter): Parquet record batches joined and cut at exactly ``chunk_rows`` rows,
  whatever the file's row groups (so chunk ``k`` is rows ``k * chunk_rows ..`` of any file
  holding these rows, e.g. a shard starting at a multiple of ``chunk_rows``), or CSV chunks
  read **as text** like :func:`.io.read_source`.
* :class:`ChunkSink` writes each de-identified chunk to a temporary file (Parquet: one
  ``ParquetWriter`` with the input's schema, one contiguous row group per chunk; CSV: the
  header once, then rows, with the quoting of :func:`.io.output_bytes`), hashing the bytes
  as they are written. Nothing
  reaches the target until :meth:`ChunkSink.publish` (an atomic rename beside a local
  target, an upload for S3); a sink closed without publishing leaves nothing behind.

For an input that fits in one chunk the output bytes are those of :func:`.io.output_bytes`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from mlsecops_provider.core.data.datasets import detect_file_format
from mlsecops_provider.core.errors import DataError, StorageError
from mlsecops_provider.core.storage import (
    S3ClientFactory,
    S3Storage,
    _local_path,
    fetch_verified,
    sse_put_args,
    storage_for,
)

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class Chunk:
    """Rows ``offset .. offset + len(frame)`` of the input (and their arrow table)."""

    frame: pd.DataFrame = field(repr=False)
    offset: int
    table: Any = field(default=None, repr=False)  # pyarrow.Table for Parquet input


@dataclass(frozen=True)
class ChunkSource:
    """A verified local copy of the input, read chunk by chunk."""

    uri: str
    path: Path
    sha256: str
    format: str
    chunk_rows: int = DEFAULT_CHUNK_ROWS

    def chunks(self, columns: Sequence[str] | None = None) -> Iterator[Chunk]:
        """The input in chunks of at most ``chunk_rows`` rows (only ``columns`` if given)."""
        try:
            if self.format == "parquet":
                yield from self._parquet(columns)
            else:
                yield from self._csv(columns)
        except (DataError, StorageError):
            raise
        except Exception as err:  # pandas/pyarrow raise many types for unreadable input
            raise DataError(
                f"{self.uri}: cannot parse as {self.format} ({type(err).__name__}: {err})"
            ) from err

    def _parquet(self, columns: Sequence[str] | None) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(self.path)
        schema = parquet.schema_arrow
        if columns is not None:
            schema = pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)
        batches: list[Any] = []
        offset = filled = 0
        size = self.chunk_rows
        names = list(columns) if columns is not None else None
        for batch in _row_group_batches(parquet, size, names):
            batches.append(batch)
            filled += batch.num_rows
            while filled >= size:  # exactly ``size`` rows, whatever the row groups
                table = pa.Table.from_batches(batches, schema=schema)
                yield _arrow_chunk(table.slice(0, size), offset)
                rest = table.slice(size)
                batches, filled, offset = rest.to_batches(), rest.num_rows, offset + size
        if filled:
            yield _arrow_chunk(pa.Table.from_batches(batches, schema=schema), offset)

    def _csv(self, columns: Sequence[str] | None) -> Iterator[Chunk]:
        import pandas as pd

        offset = 0
        with pd.read_csv(
            self.path,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            chunksize=self.chunk_rows,
            usecols=list(columns) if columns is not None else None,
        ) as reader:
            for frame in reader:
                if len(frame):
                    yield Chunk(frame.reset_index(drop=True), offset)
                    offset += len(frame)


def _arrow_chunk(table: Any, offset: int) -> Chunk:
    return Chunk(table.to_pandas().reset_index(drop=True), offset, table)


@contextlib.contextmanager
def open_source(
    uri: str,
    expected_sha256: str | None = None,
    factory: S3ClientFactory | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[ChunkSource]:
    """A :class:`ChunkSource` for ``uri``, read from a private copy made while hashing
    (:func:`.storage.fetch_verified`: a source changed after the check is never read);
    the copy is removed on exit."""
    with tempfile.TemporaryDirectory(prefix="mlsecops-pii-") as work:
        path = Path(work) / "input"
        digest = fetch_verified(uri, expected_sha256, path, factory)
        yield ChunkSource(uri, path, digest, detect_file_format(path), chunk_rows)


class _HashingFile:
    """A binary file that hashes what is written to it (pyarrow accepts it as a sink)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self._handle.write(data)

    def flush(self) -> None:
        self._handle.flush()

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        self.closed = True  # the sink closes the real handle


class ChunkSink:
    """The de-identified output, written chunk by chunk to a temporary file.

    ``write`` takes each chunk's output frame (and, for Parquet input, the chunk's arrow
    table and the gate's column renames and transformed columns); ``close`` ends the file
    (digest in ``sha256``); ``publish`` moves it to ``uri``. Use it as a context manager:
    on exit an unpublished temporary file is removed.
    """

    def __init__(self, uri: str, fmt: str, factory: S3ClientFactory | None = None) -> None:
        if fmt not in ("csv", "parquet"):
            raise DataError(f"unknown table format {fmt!r} (expected parquet or csv)")
        self.uri, self.format = uri, fmt
        self._storage = storage_for(uri, factory)
        local = not isinstance(self._storage, S3Storage)
        where = _local_path(uri).parent if local else None
        try:
            if where is not None:
                where.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=where, prefix=".pii-output.", suffix=".tmp")
        except OSError as err:
            raise StorageError(f"{uri}: cannot write ({err.strerror})") from err
        self._tmp = Path(tmp)
        self._handle = os.fdopen(fd, "wb")
        self._file = _HashingFile(self._handle)
        self._writer: Any = None
        self.rows = 0
        self.columns: tuple[str, ...] = ()
        self.sha256: str | None = None
        self.published = False

    def __enter__(self) -> ChunkSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close_files()
        if not self.published:
            self._tmp.unlink(missing_ok=True)

    def write(
        self,
        frame: pd.DataFrame,
        table: Any = None,
        sources: Mapping[str, str] | None = None,
        transformed: frozenset[str] = frozenset(),
    ) -> None:
        """Append one chunk's output (the first chunk fixes the header / schema)."""
        first = self.rows == 0 and self._file.size == 0
        if first:
            self.columns = tuple(map(str, frame.columns))
        if self.format == "csv":
            self._file.write(frame.to_csv(index=False, header=first).encode())
        else:
            self._write_parquet(frame, table, dict(sources or {}), transformed)
        self.rows += len(frame)

    def _write_parquet(
        self, frame: pd.DataFrame, table: Any, sources: dict[str, str], transformed: frozenset[str]
    ) -> None:
        from mlsecops_provider.core.pii.io import arrow_output

        if table is None:
            raise DataError("Parquet output from a chunked source needs Parquet input")
        out = arrow_output(table, frame, sources, transformed)
        self.append_table(out)

    def append_table(self, table: Any, schema: Any = None) -> None:
        """Append an arrow table as it is (Parquet; the first fixes the schema). Written
        contiguous: the bytes do not depend on how the table's arrays were chunked."""
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(self._file, schema or table.schema)
            self.columns = self.columns or tuple(table.schema.names)
        self._writer.write_table(table.combine_chunks())

    def append_bytes(self, data: bytes) -> None:
        """Append bytes as they are (CSV: a verified shard's header or body)."""
        self._file.write(data)

    def close(self) -> str:
        """End the file; its SHA-256."""
        self._close_files()
        self.sha256 = self._file.digest.hexdigest()
        return self.sha256

    def _close_files(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if not self._handle.closed:
            self._handle.close()

    def publish(self) -> None:
        """Move the finished file to the target URI (after every chunk was verified)."""
        if self.sha256 is None:
            self.close()
        try:
            if isinstance(self._storage, S3Storage):
                bucket, _, key = self.uri.removeprefix("s3://").partition("/")
                with self._tmp.open("rb") as handle:  # streamed from the file, not read whole
                    self._storage.client.put_object(
                        Bucket=bucket, Key=key, Body=handle, **sse_put_args()
                    )
                self._tmp.unlink(missing_ok=True)
            else:
                os.replace(self._tmp, _local_path(self.uri))
        except Exception as err:  # OSError or botocore's many types: the output is not there
            raise StorageError(f"{self.uri}: cannot write ({type(err).__name__})") from err
        self.published = True


def _row_group_batches(parquet: Any, size: int, names: list[str] | None) -> Iterator[Any]:
    """Record batches of at most ``size`` rows, one reader per row group: a single
    ``iter_batches`` over the whole file keeps memory of every batch it decoded until it
    ends (pyarrow 25), so memory would grow with the table instead of the chunk."""
    for group in range(parquet.metadata.num_row_groups):
        yield from parquet.iter_batches(batch_size=size, row_groups=[group], columns=names)
