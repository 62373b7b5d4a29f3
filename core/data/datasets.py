"""Tabular datasets at URIs: read with digest verification, write atomically.

Formats are recognised by content (Parquet's ``PAR1`` magic) and otherwise parsed as CSV;
a dataset that parses to no rows is an error that says so.
"""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.storage import (
    S3ClientFactory,
    read_verified,
    sha256_bytes,
    storage_for,
)

if TYPE_CHECKING:
    import pandas as pd

PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class DatasetRef:
    """A dataset version: where it is, what its bytes hash to, and its shape."""

    uri: str
    sha256: str
    rows: int
    columns: tuple[str, ...]
    format: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["columns"] = list(self.columns)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetRef:
        try:
            return cls(
                uri=str(data["uri"]),
                sha256=str(data["sha256"]),
                rows=int(data["rows"]),
                columns=tuple(data["columns"]),
                format=str(data["format"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"not a dataset reference: {data!r:.200} ({err})") from err


def dataset_from_xcom(value: Any) -> DatasetRef:
    """A dataset reference from an upstream task's XCom: a DatasetRef dict, or a gate's
    output that carries one under ``dataset``."""
    if isinstance(value, DatasetRef):
        return value
    if isinstance(value, dict) and isinstance(value.get("dataset"), dict):
        return DatasetRef.from_dict(value["dataset"])
    if isinstance(value, dict):
        return DatasetRef.from_dict(value)
    raise DataError(f"not a dataset reference: {value!r:.200}")


def detect_format(data: bytes) -> str:
    if data[:4] == PARQUET_MAGIC and data[-4:] == PARQUET_MAGIC:
        return "parquet"
    return "csv"


def detect_file_format(path: str | os.PathLike[str]) -> str:
    """:func:`detect_format` of a local file, reading only its first and last 4 bytes."""
    with open(path, "rb") as handle:
        head = handle.read(4)
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(size - 4, 0))
        tail = handle.read(4)
    return detect_format(head + tail) if size >= 8 else "csv"


def describe(uri: str, data: bytes, frame: pd.DataFrame, fmt: str) -> DatasetRef:
    return DatasetRef(uri, sha256_bytes(data), len(frame), tuple(map(str, frame.columns)), fmt)


def parse_table(data: bytes, uri: str) -> tuple[pd.DataFrame, str]:
    """Parse bytes as Parquet or CSV; any parser failure names the URI."""
    import pandas as pd

    fmt = detect_format(data)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            frame = pd.read_csv(io.BytesIO(data))
    except Exception as err:  # pandas/pyarrow raise many types for unreadable input
        raise DataError(f"{uri}: cannot parse as {fmt} ({type(err).__name__}: {err})") from err
    if len(frame) == 0:
        raise DataError(f"{uri}: dataset is empty (0 rows)")
    return frame, fmt


def read_table(
    uri: str,
    expected_sha256: str | None = None,
    s3_client_factory: S3ClientFactory | None = None,
) -> tuple[pd.DataFrame, DatasetRef]:
    """Read a dataset, verifying its digest when one is expected (verify-on-read)."""
    storage = storage_for(uri, s3_client_factory)
    data = read_verified(storage, uri, expected_sha256)
    frame, fmt = parse_table(data, uri)
    return frame, describe(uri, data, frame, fmt)


def table_bytes(frame: pd.DataFrame, fmt: str = "parquet") -> bytes:
    buffer = io.BytesIO()
    if fmt == "parquet":
        frame.to_parquet(buffer, index=False)
    elif fmt == "csv":
        frame.to_csv(buffer, index=False)
    else:
        raise DataError(f"unknown table format {fmt!r} (expected parquet or csv)")
    return buffer.getvalue()


def write_table(
    frame: pd.DataFrame,
    uri: str,
    fmt: str = "parquet",
    s3_client_factory: S3ClientFactory | None = None,
) -> DatasetRef:
    """Write a dataset atomically and return its reference."""
    data = table_bytes(frame, fmt)
    storage_for(uri, s3_client_factory).write_bytes(uri, data)
    return describe(uri, data, frame, fmt)
