"""Streamed ingest: the published copy is the hashed bytes, and its shape is the whole table's
(row count, columns) although only a chunk is ever held; bad input publishes nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlsecops_provider.core.data.datasets import describe, parse_table
from mlsecops_provider.core.data.ingest import ingest_copy
from mlsecops_provider.core.errors import DataError, DigestMismatchError
from mlsecops_provider.include.generator import generate


def _whole(path: Path) -> tuple[int, tuple[str, ...], str]:
    data = path.read_bytes()
    frame, fmt = parse_table(data, path.as_uri())
    ref = describe(path.as_uri(), data, frame, fmt)
    return ref.rows, ref.columns, ref.sha256


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_streamed_ingest_equals_the_whole_table_read(tmp_path: Path, fmt: str) -> None:
    frame = generate(2500, seed=3)
    source = tmp_path / f"in.{fmt}"
    if fmt == "parquet":  # several row groups, as a writer streaming pieces leaves them
        pq.write_table(pa.Table.from_pandas(frame), source, row_group_size=700)
    else:
        frame.to_csv(source, index=False)
    targets: list[str] = []

    def target_for(kind: str) -> str:
        targets.append((tmp_path / "out" / f"copy.{kind}").as_uri())
        return targets[-1]

    done = ingest_copy(source.as_uri(), None, target_for, sample_rows=100)
    rows, columns, sha256 = _whole(source)
    assert (done.target.rows, done.target.columns, done.target.sha256) == (rows, columns, sha256)
    assert done.target.format == fmt and targets == [done.target.uri]
    assert (tmp_path / "out" / f"copy.{fmt}").read_bytes() == source.read_bytes()
    assert len(done.sample) == 100 and list(done.sample.columns) == list(columns)
    assert done.source.uri == source.as_uri() and done.source.sha256 == sha256


def test_a_wrong_digest_or_an_empty_table_publishes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    pd.DataFrame({"a": [1, 2]}).to_csv(source, index=False)
    target = tmp_path / "out.csv"
    with pytest.raises(DigestMismatchError):
        ingest_copy(source.as_uri(), "0" * 64, lambda _: target.as_uri())
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n")
    with pytest.raises(DataError, match="empty"):
        ingest_copy(empty.as_uri(), None, lambda _: target.as_uri())
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x00" * 32 + b"PAR1")
    with pytest.raises(DataError, match="cannot parse as parquet"):
        ingest_copy(broken.as_uri(), None, lambda _: target.as_uri())
    assert not target.exists()
