"""Ingest a dataset version by streaming: copy, digest and shape it without loading the table.

The source is copied once into a private temporary file while it is hashed (an S3 object is
downloaded, a local file read), the digest is checked against the expected one, and only then
is that same file published to the target: the published bytes are the bytes that were
hashed, whatever happens to the source meanwhile. The shape comes from the copy: Parquet's
footer (row count) and first row group, CSV read chunk by chunk (rows counted, nothing kept);
the first ``sample_rows`` rows are returned, parsed as :func:`parse_table` would, for the
dataset's MLflow schema. Memory is bounded by a chunk, not by the table.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.data.datasets import DatasetRef, detect_file_format
from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.storage import S3ClientFactory, fetch_verified, storage_for

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_ROWS = 10_000


@dataclass(frozen=True)
class Ingested:
    """The source and the published copy (same bytes, same digest) and a sample of rows."""

    source: DatasetRef
    target: DatasetRef
    sample: pd.DataFrame


def ingest_copy(
    source_uri: str,
    expected_sha256: str | None,
    target_for: Callable[[str], str],
    factory: S3ClientFactory | None = None,
    sample_rows: int = SAMPLE_ROWS,
) -> Ingested:
    """Copy ``source_uri`` to ``target_for(format)`` (verified, streamed) and describe it."""
    with tempfile.TemporaryDirectory(prefix="mlsecops-ingest-") as work:
        path = Path(work) / "data"
        digest = fetch_verified(source_uri, expected_sha256 or None, path, factory)
        fmt = detect_file_format(path)
        rows, sample = _shape(path, fmt, source_uri, sample_rows)
        target_uri = target_for(fmt)
        storage_for(target_uri, factory).write_file(target_uri, path)
    columns = tuple(map(str, sample.columns))
    return Ingested(
        DatasetRef(source_uri, digest, rows, columns, fmt),
        DatasetRef(target_uri, digest, rows, columns, fmt),
        sample,
    )


def _shape(path: Path, fmt: str, uri: str, sample_rows: int) -> tuple[int, pd.DataFrame]:
    """Row count and the first ``sample_rows`` rows; DataError when unparsable or empty."""
    try:
        rows, sample = (_parquet if fmt == "parquet" else _csv)(path, sample_rows)
    except Exception as err:  # pandas/pyarrow raise many types for unreadable input
        raise DataError(f"{uri}: cannot parse as {fmt} ({type(err).__name__}: {err})") from err
    if rows == 0:
        raise DataError(f"{uri}: dataset is empty (0 rows)")
    return rows, sample


def _parquet(path: Path, sample_rows: int) -> tuple[int, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    rows = parquet.metadata.num_rows
    if rows == 0:
        return 0, parquet.schema_arrow.empty_table().to_pandas()
    group = next(
        g for g in range(parquet.metadata.num_row_groups) if parquet.metadata.row_group(g).num_rows
    )
    first = next(parquet.iter_batches(batch_size=sample_rows, row_groups=[group]))
    return rows, pa.Table.from_batches([first], schema=parquet.schema_arrow).to_pandas()


def _csv(path: Path, sample_rows: int) -> tuple[int, Any]:
    import pandas as pd

    sample = pd.read_csv(path, nrows=sample_rows)
    rows = 0
    with pd.read_csv(
        path, dtype=str, keep_default_na=False, na_filter=False, chunksize=100_000
    ) as reader:
        for frame in reader:
            rows += len(frame)
    return rows, sample
