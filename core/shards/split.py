"""Split a dataset into shards that mapped tasks can work on independently.

Each shard is a dataset of its own, addressed by URI and SHA-256 (:class:`ShardRef`), so a
task reading it verifies its bytes (a shard changed between tasks fails with both digests).
The shards of one input are numbered ``0 .. count-1`` and know their row ``offset`` in the
input; :func:`check_cover` proves that a set of shards (or of per-shard results) covers the
input exactly once, which a reduce task checks before it merges anything.

* **Parquet**: record batches are joined into shards of ``shard_rows`` rows and written with
  the input's arrow schema (metadata included), one file per shard.
* **CSV** is split **as bytes** at record boundaries (quote-aware: a newline inside a quoted
  field does not end a record); every shard starts with the input's header line. Each shard
  is a byte range of the input, so a reader parsing it as text sees exactly the input's
  values.

An input that fits in one shard is not copied: its only shard is the input itself.
``shard_rows`` can be rounded up to a multiple of ``align`` (e.g. the PII gate's chunk size,
so chunks never straddle shards).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from mlsecops_provider.core.errors import ConfigError, DataError
from mlsecops_provider.core.pii.chunks import open_source
from mlsecops_provider.core.storage import S3ClientFactory, sha256_bytes, storage_for

log = logging.getLogger(__name__)

SHARD_SCHEMA = "mlsecops.shard/v1"


@dataclass(frozen=True)
class ShardRef:
    """Shard ``index`` of ``count`` of the input ``source_sha256``: rows ``offset ..``."""

    uri: str
    sha256: str
    index: int
    count: int
    offset: int
    rows: int
    format: str
    source_uri: str
    source_sha256: str

    def __post_init__(self) -> None:
        if not (0 <= self.index < self.count) or self.offset < 0 or self.rows < 1:
            raise DataError(f"shard {self.index} of {self.count}: inconsistent numbering")
        if self.format not in ("csv", "parquet"):
            raise DataError(f"shard {self.index}: unknown format {self.format!r}")

    @property
    def label(self) -> str:
        return f"shard {self.index + 1}/{self.count}"

    def dataset(self) -> dict[str, Any]:
        """The shard as a dataset reference (what the readers of datasets take)."""
        return {"uri": self.uri, "sha256": self.sha256}

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SHARD_SCHEMA, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any) -> ShardRef:
        if isinstance(data, ShardRef):
            return data
        if not isinstance(data, Mapping) or data.get("schema") != SHARD_SCHEMA:
            raise DataError(f"not a shard reference: {str(data)[:200]}")
        try:
            return cls(
                uri=str(data["uri"]),
                sha256=str(data["sha256"]),
                index=int(data["index"]),
                count=int(data["count"]),
                offset=int(data["offset"]),
                rows=int(data["rows"]),
                format=str(data["format"]),
                source_uri=str(data["source_uri"]),
                source_sha256=str(data["source_sha256"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"not a shard reference: {str(data)[:200]} ({err})") from err


def check_cover(shards: Sequence[ShardRef]) -> list[ShardRef]:
    """The shards in order, if they cover one input exactly once; else :class:`DataError`."""
    if not shards:
        raise DataError("no shards to merge")
    ordered = sorted(shards, key=lambda s: s.index)
    first = ordered[0]
    sources = {(s.source_uri, s.source_sha256) for s in ordered}
    if len(sources) != 1:
        raise DataError(f"shards of {len(sources)} different inputs cannot be merged")
    counts = {s.count for s in ordered}
    indices = [s.index for s in ordered]
    if counts != {len(ordered)} or indices != list(range(len(ordered))):
        missing = sorted(set(range(first.count)) - set(indices))
        doubled = sorted({i for i in indices if indices.count(i) > 1})
        raise DataError(
            f"shards of {first.source_uri} do not cover it exactly once "
            f"(expected {first.count}, got {len(ordered)}; missing {missing}, twice {doubled})"
        )
    offset = 0
    for shard in ordered:
        if shard.offset != offset:
            raise DataError(f"{shard.label}: starts at row {shard.offset}, expected {offset}")
        offset += shard.rows
    return ordered


def shard_size(rows: int, shard_rows: int | None, shard_count: int | None, align: int = 1) -> int:
    """Rows per shard from a size or a count (a count wins), rounded up to ``align``."""
    if shard_rows is None and shard_count is None:
        raise ConfigError("sharding needs shard_rows or shard_count")
    for name, value in (("shard_rows", shard_rows), ("shard_count", shard_count)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name}: must be a positive integer, got {value!r}")
    if align < 1:
        raise ConfigError(f"align: must be a positive integer, got {align!r}")
    size = math.ceil(rows / shard_count) if shard_count else int(shard_rows or 1)
    return max(align, math.ceil(max(size, 1) / align) * align)


def split_dataset(
    uri: str,
    expected_sha256: str | None,
    target_prefix: str,
    *,
    shard_rows: int | None = None,
    shard_count: int | None = None,
    align: int = 1,
    factory: S3ClientFactory | None = None,
) -> list[ShardRef]:
    """Split the (verified) input at ``uri`` into shards written under ``target_prefix``."""
    with open_source(uri, expected_sha256, factory) as source:
        if source.format == "parquet":
            return _split_parquet(source, target_prefix, shard_rows, shard_count, align, factory)
        return _split_csv(source, target_prefix, shard_rows, shard_count, align, factory)


def _split_parquet(
    source: Any,
    prefix: str,
    shard_rows: int | None,
    shard_count: int | None,
    align: int,
    factory: S3ClientFactory | None,
) -> list[ShardRef]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(source.path).metadata.num_rows
    if rows < 1:
        raise DataError(f"{source.uri}: dataset is empty (0 rows)")
    size = shard_size(rows, shard_rows, shard_count, align)
    count = math.ceil(rows / size)
    if count == 1:
        return [_whole(source, rows)]
    chunked = type(source)(source.uri, source.path, source.sha256, source.format, size)
    shards: list[ShardRef] = []
    for chunk in chunked.chunks():
        sink = pa.BufferOutputStream()
        pq.write_table(chunk.table, sink)
        data = sink.getvalue().to_pybytes()
        shards.append(_store(source, prefix, data, len(shards), count, chunk.offset, "parquet",
                             chunk.table.num_rows, factory))  # fmt: skip
    return shards


def _split_csv(
    source: Any,
    prefix: str,
    shard_rows: int | None,
    shard_count: int | None,
    align: int,
    factory: S3ClientFactory | None,
) -> list[ShardRef]:
    with Path(source.path).open("rb") as handle:
        header = _first_record(handle, source.uri)
        rows = sum(1 for record in _records(handle) if record.strip())
        if rows < 1:
            raise DataError(f"{source.uri}: dataset is empty (0 rows)")
        size = shard_size(rows, shard_rows, shard_count, align)
        count = math.ceil(rows / size)
        if count == 1:
            return [_whole(source, rows)]
        handle.seek(len(header))
        shards: list[ShardRef] = []
        pieces: list[bytes] = [header]
        filled = offset = 0
        for record in _records(handle):
            pieces.append(record)
            filled += bool(record.strip())
            if filled == size:
                shards.append(_store(source, prefix, b"".join(pieces), len(shards), count,
                                     offset, "csv", filled, factory))  # fmt: skip
                pieces, offset, filled = [header], offset + filled, 0
        if filled:
            shards.append(_store(source, prefix, b"".join(pieces), len(shards), count, offset,
                                 "csv", filled, factory))  # fmt: skip
    if len(shards) != count:
        raise DataError(f"{source.uri}: split into {len(shards)} shards, expected {count}")
    return shards


def _first_record(handle: BinaryIO, uri: str) -> bytes:
    header = next(_records(handle), b"")
    if not header.strip():
        raise DataError(f"{uri}: no CSV header line")
    handle.seek(len(header))
    return header


def _records(handle: BinaryIO) -> Iterator[bytes]:
    """Whole CSV records (a quoted field may hold newlines), each with its line ending."""
    pending: list[bytes] = []
    quotes = 0
    for line in handle:
        pending.append(line)
        quotes += line.count(b'"')
        if quotes % 2 == 0:
            yield b"".join(pending)
            pending, quotes = [], 0
    if pending:
        yield b"".join(pending)  # an unterminated quote: the parser of the shard will say so


def _whole(source: Any, rows: int) -> ShardRef:
    log.info("%s: %d rows fit in one shard; not split", source.uri, rows)
    return ShardRef(source.uri, source.sha256, 0, 1, 0, rows, source.format, source.uri,
                    source.sha256)  # fmt: skip


def _store(
    source: Any,
    prefix: str,
    data: bytes,
    index: int,
    count: int,
    offset: int,
    fmt: str,
    rows: int,
    factory: S3ClientFactory | None,
) -> ShardRef:
    uri = f"{prefix.rstrip('/')}/shard-{index:05d}-of-{count:05d}.{fmt}"
    storage_for(uri, factory).write_bytes(uri, data)
    digest = sha256_bytes(data)
    log.info("shard %d/%d: rows %d..%d -> %s (sha256 %s)", index + 1, count, offset,
             offset + rows - 1, uri, digest[:12])  # fmt: skip
    return ShardRef(uri, digest, index, count, offset, rows, fmt, source.uri, source.sha256)
