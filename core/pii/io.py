"""Faithful input and output for de-identification: untransformed columns stay as they were.

* CSV is read **as text** (every column a string, no NA parsing), so ``0.1840`` stays
  ``0.1840``, ``007`` keeps its zeros and an empty cell stays empty; the output CSV writes
  the same strings back.
* Parquet is read with pyarrow and the output table is assembled from the *input's*
  arrow columns for every column the gate did not transform (same type, same values,
  same schema metadata); only transformed columns are new (strings).

Row count and order are always the input's.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.data.datasets import DatasetRef, describe, detect_format
from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.storage import S3ClientFactory, read_verified, storage_for

if TYPE_CHECKING:
    import pandas as pd

    from mlsecops_provider.core.pii.gate import Outcome

PANDAS_KEY = b"pandas"


@dataclass(frozen=True)
class Source:
    """A dataset read for de-identification: the frame, its reference, its arrow table."""

    frame: pd.DataFrame = field(repr=False)
    ref: DatasetRef
    table: Any = field(default=None, repr=False)  # pyarrow.Table for Parquet input

    @property
    def format(self) -> str:
        return self.ref.format


def read_source(
    uri: str, expected_sha256: str | None = None, factory: S3ClientFactory | None = None
) -> Source:
    """Read (verifying the digest when given) Parquet via pyarrow or CSV as text."""
    import pandas as pd
    import pyarrow.parquet as pq

    data = read_verified(storage_for(uri, factory), uri, expected_sha256)
    fmt = detect_format(data)
    table = None
    try:
        if fmt == "parquet":
            table = pq.read_table(io.BytesIO(data))
            frame = table.to_pandas()
        else:
            frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_filter=False)
    except Exception as err:  # pandas/pyarrow raise many types for unreadable input
        raise DataError(f"{uri}: cannot parse as {fmt} ({type(err).__name__}: {err})") from err
    if len(frame) == 0:
        raise DataError(f"{uri}: dataset is empty (0 rows)")
    return Source(frame, describe(uri, data, frame, fmt), table)


def output_bytes(source: Source, outcome: Outcome, fmt: str | None = None) -> bytes:
    """The de-identified dataset as bytes, in ``fmt`` (default: the input's format)."""
    fmt = fmt or source.format
    if fmt == "csv":
        buffer = io.StringIO()
        outcome.frame.to_csv(buffer, index=False)
        return buffer.getvalue().encode()
    if fmt != "parquet":
        raise DataError(f"unknown table format {fmt!r} (expected parquet or csv)")
    if source.table is None:
        buffer_b = io.BytesIO()
        outcome.frame.to_parquet(buffer_b, index=False)
        return buffer_b.getvalue()
    return _parquet(source.table, outcome)


def _parquet(table: Any, outcome: Outcome) -> bytes:
    import pyarrow.parquet as pq

    out = arrow_output(table, outcome.frame, outcome.sources, outcome.transformed)
    buffer = io.BytesIO()
    pq.write_table(out, buffer)
    return buffer.getvalue()


def arrow_output(
    table: Any, frame: pd.DataFrame, sources: Mapping[str, str], transformed: frozenset[str]
) -> Any:
    """The output arrow table: the input's arrow columns for every column the gate did not
    transform, strings for the transformed ones (``sources``: output -> input name)."""
    import pyarrow as pa

    arrays, fields = [], []
    for column in map(str, frame.columns):
        original = sources.get(column, column)
        old = table.schema.field(original)
        if column in transformed or original not in table.column_names:
            values = frame[column].astype(object).where(frame[column].notna())
            kind = (
                old.type
                if pa.types.is_string(old.type) or pa.types.is_large_string(old.type)
                else pa.string()
            )
            arrays.append(pa.array([None if v is None else str(v) for v in values], type=kind))
            fields.append(pa.field(column, kind, nullable=True))
        else:
            arrays.append(table.column(original))
            fields.append(old.with_name(column))
    metadata = _metadata(table.schema.metadata or {}, sources, transformed)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))


def _metadata(
    metadata: dict[bytes, bytes], sources: Mapping[str, str], transformed: frozenset[str]
) -> dict[bytes, bytes]:
    """The input's schema metadata; pandas' column entries follow renames, drops and the new
    string type of transformed columns."""
    if PANDAS_KEY not in metadata:
        return dict(metadata)
    try:
        pandas_meta = json.loads(metadata[PANDAS_KEY])
    except ValueError:
        return {k: v for k, v in metadata.items() if k != PANDAS_KEY}
    renamed = {source: out for out, source in sources.items()}
    columns = []
    for entry in pandas_meta.get("columns", []):
        name = entry.get("field_name")
        if name in renamed:
            out = renamed[name]
            entry = {**entry, "name": out, "field_name": out}
            if out in transformed:
                entry.update(pandas_type="unicode", numpy_type="object", metadata=None)
            columns.append(entry)
        elif name in pandas_meta.get("index_columns", []) or str(name).startswith("__index"):
            columns.append(entry)
    pandas_meta["columns"] = columns
    return {**metadata, PANDAS_KEY: json.dumps(pandas_meta).encode()}
