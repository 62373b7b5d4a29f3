"""DatasetShardOperator: shards only big data, aligned to the PII chunks, idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops_provider.core.data.datasets import read_table, write_table
from mlsecops_provider.core.shards.split import ShardRef, check_cover
from mlsecops_provider.include.generator import generate
from tests.operators.fakes import FakeTaskInstance


def _policy(tmp_path: Path, chunk_rows: int) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(f"version: 1\ngates:\n  pii_deidentification:\n    chunk_rows: {chunk_rows}\n")
    return str(path)


def test_big_data_is_split_into_verified_shards_aligned_to_pii_chunks(tmp_path: Path) -> None:
    from mlsecops_provider.operators.shards import DatasetShardOperator

    ref = write_table(generate(230, seed=3), (tmp_path / "raw.parquet").as_uri()).to_dict()
    operator = DatasetShardOperator(
        task_id="split", dataset=ref, shard_rows="70", policy_path=_policy(tmp_path, 40)
    )
    ti = FakeTaskInstance("manual__split", "shard_test")
    shards = [ShardRef.from_dict(s) for s in operator.execute({"ti": ti})]
    assert [s.rows for s in shards] == [80, 80, 70]  # 70 rounded up to two chunks of 40
    assert check_cover(shards) == shards and shards[0].source_sha256 == ref["sha256"]
    for shard in shards:
        frame, _ = read_table(shard.uri, shard.sha256)
        assert len(frame) == shard.rows
    again = operator.execute({"ti": ti})  # a re-run writes the same bytes
    assert [s["sha256"] for s in again] == [s.sha256 for s in shards]


def test_small_data_is_one_shard_the_dataset_itself(tmp_path: Path) -> None:
    from mlsecops_provider.operators.shards import DatasetShardOperator

    ref = write_table(generate(50, seed=4), (tmp_path / "raw.parquet").as_uri()).to_dict()
    operator = DatasetShardOperator(task_id="split", dataset=ref, shard_rows=100)
    (shard,) = operator.execute({"ti": FakeTaskInstance("manual__small", "shard_test")})
    assert (shard["uri"], shard["sha256"], shard["count"]) == (ref["uri"], ref["sha256"], 1)


@pytest.mark.parametrize("value", ["0", "-3", "ten", 2.5])
def test_a_shard_size_that_is_not_a_positive_integer_fails_unretried(tmp_path, value) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from mlsecops_provider.operators.shards import DatasetShardOperator

    ref = write_table(generate(20, seed=5), (tmp_path / "raw.parquet").as_uri()).to_dict()
    operator = DatasetShardOperator(task_id="split", dataset=ref, shard_rows=value)
    with pytest.raises(AirflowFailException, match="shard_rows: must be a positive integer"):
        operator.execute({"ti": FakeTaskInstance("manual__bad", "shard_test")})
