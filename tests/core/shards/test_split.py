"""Splitting datasets into shards: exact covers, byte-faithful CSV pieces, verified reads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlsecops_provider.core.data.datasets import read_table
from mlsecops_provider.core.errors import ConfigError, DataError, DigestMismatchError
from mlsecops_provider.core.shards.split import ShardRef, check_cover, shard_size, split_dataset
from mlsecops_provider.core.storage import sha256_bytes


def _frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(rows),
            "note": [f"row {i}" for i in range(rows)],
            "x": [i / 3 for i in range(rows)],
        }
    )


def test_parquet_shards_cover_the_input_and_keep_its_schema(tmp_path):
    path = tmp_path / "in.parquet"
    table = pa.Table.from_pandas(_frame(25), preserve_index=False)
    table = table.replace_schema_metadata({**table.schema.metadata, b"owner": b"team"})
    pq.write_table(table, path)
    shards = split_dataset(path.as_uri(), None, (tmp_path / "shards").as_uri(), shard_rows=10)
    assert [(s.index, s.offset, s.rows) for s in shards] == [(0, 0, 10), (1, 10, 10), (2, 20, 5)]
    assert check_cover(list(reversed(shards))) == shards
    parts = [pq.read_table(s.uri.removeprefix("file://")) for s in shards]
    assert all(p.schema.metadata[b"owner"] == b"team" for p in parts)
    assert pa.concat_tables(parts).equals(pq.read_table(path))
    for shard in shards:  # each shard is a dataset addressed by its digest
        frame, ref = read_table(shard.uri, shard.sha256)
        assert ref.rows == shard.rows and frame["id"].iloc[0] == shard.offset


def test_csv_is_split_as_bytes_at_record_boundaries(tmp_path):
    header = b"id,note\r\n"
    records = [b'1,plain\r\n', b'2,"two\r\nlines, quoted ""here"""\r\n', b"\r\n", b'3,x\r\n',
               b'4,"a\nb"\r\n', b"5,last"]  # fmt: skip
    path = tmp_path / "in.csv"
    path.write_bytes(header + b"".join(records))
    shards = split_dataset(path.as_uri(), None, (tmp_path / "s").as_uri(), shard_rows=2)
    assert [s.rows for s in shards] == [2, 2, 1]
    bodies = [Path(s.uri.removeprefix("file://")).read_bytes() for s in shards]
    assert all(b.startswith(header) for b in bodies)
    assert header + b"".join(b[len(header) :] for b in bodies) == path.read_bytes()
    whole = pd.read_csv(path, dtype=str, keep_default_na=False)
    parts = [
        pd.read_csv(s.uri.removeprefix("file://"), dtype=str, keep_default_na=False) for s in shards
    ]
    assert pd.concat(parts, ignore_index=True).equals(whole)


def test_an_input_that_fits_one_shard_is_not_copied(tmp_path):
    path = tmp_path / "in.parquet"
    _frame(5).to_parquet(path)
    (shard,) = split_dataset(path.as_uri(), None, (tmp_path / "s").as_uri(), shard_rows=10)
    assert shard.uri == path.as_uri() and shard.sha256 == sha256_bytes(path.read_bytes())
    assert not (tmp_path / "s").exists()


def test_the_input_digest_is_checked_before_splitting(tmp_path):
    path = tmp_path / "in.parquet"
    _frame(5).to_parquet(path)
    with pytest.raises(DigestMismatchError):
        split_dataset(path.as_uri(), "0" * 64, (tmp_path / "s").as_uri(), shard_rows=2)


def test_a_shard_changed_after_the_split_fails_with_both_digests(tmp_path):
    path = tmp_path / "in.parquet"
    _frame(20).to_parquet(path)
    shard = split_dataset(path.as_uri(), None, (tmp_path / "s").as_uri(), shard_rows=10)[1]
    _frame(10).to_parquet(shard.uri.removeprefix("file://"))
    with pytest.raises(DigestMismatchError) as caught:
        read_table(shard.uri, shard.sha256)
    assert shard.sha256 in str(caught.value) and caught.value.actual in str(caught.value)


def test_cover_refuses_missing_doubled_foreign_and_shifted_shards(tmp_path):
    path = tmp_path / "in.parquet"
    _frame(30).to_parquet(path)
    shards = split_dataset(path.as_uri(), None, (tmp_path / "s").as_uri(), shard_count=3)
    with pytest.raises(DataError, match="missing \\[1\\]"):
        check_cover([shards[0], shards[2]])
    with pytest.raises(DataError, match="twice \\[0\\]"):
        check_cover([shards[0], shards[0], shards[2]])
    with pytest.raises(DataError, match="different inputs"):
        check_cover([shards[0], dataclasses.replace(shards[1], source_sha256="f" * 64), shards[2]])
    with pytest.raises(DataError, match="starts at row"):
        check_cover([shards[0], dataclasses.replace(shards[1], offset=11), shards[2]])
    assert ShardRef.from_dict(shards[1].to_dict()) == shards[1]
    with pytest.raises(DataError, match="not a shard reference"):
        ShardRef.from_dict({"uri": shards[1].uri})


def test_shard_size_rounds_to_the_alignment_and_refuses_nonsense():
    assert shard_size(100, 30, None) == 30
    assert shard_size(100, None, 3) == 34
    assert shard_size(100, 30, None, align=25) == 50
    for bad in (0, -1, 2.5, "3"):
        with pytest.raises(ConfigError):
            shard_size(100, bad, None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        shard_size(100, None, None)
