"""Attack: the same value gets two digests in two shards (a column that is all strings or all
integers in one shard, the vectorised SipHash path, but mixed in another, the value-by-value
path), so the sharded gate counts a repeated value as two distinct ones and passes a
uniqueness expectation the single-task gate fails.

Proves: merged distinct and once-only counts equal pandas' over the whole column, for
columns whose type mix differs per shard, and the sharded gate's uniqueness results equal
the single-task gate's on parquet and CSV inputs with look-alike values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlsecops_provider.core.data.datasets import read_table, write_table
from mlsecops_provider.core.shards.buckets import merge_digest_counts
from mlsecops_provider.core.shards.split import split_dataset
from mlsecops_provider.core.shards.stats import digest_counts, digest_key
from mlsecops_provider.core.validation import gate as g
from mlsecops_provider.core.validation.poisoning_config import PoisoningConfig
from mlsecops_provider.core.validation.sharded import partial_bytes, validate_shard
from mlsecops_provider.core.validation.sharded_merge import merge_partials
from mlsecops_provider.core.validation.suite import Suite, parse_suite

KEY = digest_key("c" * 64)
CONFIG = g.ValidationConfig(screens=PoisoningConfig(enabled=False), render_html=False)


def _merged(pieces: list[pd.Series]) -> tuple[int, int]:
    return merge_digest_counts([json.loads(json.dumps(digest_counts(p, KEY))) for p in pieces])


def _expected(pieces: list[pd.Series]) -> tuple[int, int]:
    whole = pd.concat(pieces, ignore_index=True).dropna()
    counts = whole.value_counts()
    return int(len(counts)), int((counts == 1).sum())


SHARDED_COLUMNS = {
    # all strings here (vectorised), a surrogate / None / a number next to them there
    "strings_then_mixed": [["a", "b", "c"], ["a", "\ud800", None], ["c", 7, "\ud800"]],
    # all integers here (vectorised, > int64 too), mixed with text / floats there
    "integers_then_mixed": [[1, 2**64 - 1, 2**63], [2**63, "x", 3.5], [1, None, "2"]],
    "numpy_integers": [
        [np.int64(4), np.uint64(2**64 - 1)],
        [4, 2**64 - 1, "4"],
        [np.int32(4), b"4"],
    ],
    "bytes_and_text": [[b"k", b"\x00"], ["k", "\x00"], [b"k", "k"]],
    "huge_integers": [[10**30, 10**40], [10**30, "z"], [-(10**30), 10**40]],
}


@pytest.mark.parametrize("name", sorted(SHARDED_COLUMNS))
def test_merged_counts_equal_the_whole_columns(name: str) -> None:
    """Distinct and once-only counts from shard digests equal pandas' over the column."""
    pieces = [pd.Series(p, dtype=object) for p in SHARDED_COLUMNS[name]]
    assert _merged(pieces) == _expected(pieces)


def _observed(details: dict[str, Any]) -> list[tuple[Any, ...]]:
    out = []
    for item in details["validation_result"]["results"]:
        result = item.get("result") or {}
        kwargs = item["expectation_config"]["kwargs"]
        out.append((kwargs["column"], item["success"], result.get("unexpected_count")))
    return out


def _suite(columns: list[str]) -> Suite:
    expectations: list[dict[str, Any]] = []
    for column in columns:
        expectations += [
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": column}},
            {
                "type": "expect_column_unique_value_count_to_be_between",
                "kwargs": {"column": column, "min_value": 11, "max_value": 11},
            },
            {
                "type": "expect_column_proportion_of_unique_values_to_be_between",
                "kwargs": {"column": column, "min_value": 0.99},
            },
        ]
    return parse_suite({"name": "digests", "expectations": expectations})


def _frame() -> pd.DataFrame:
    """Twelve rows; every column repeats exactly one value, in two different shards."""
    return pd.DataFrame(
        {
            "text": ["a", "é", "e\u0301", "", "a\x00", "😀", "5", "5.0", "b ", "b", "True", "a"],
            "count": [1, -1, 2**62, -(2**63), 5, 50, 0, 7, 8, 9, 10, 1],
            "ratio": [0.0, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, -0.0],
            "blob": [b"a", b"\x00", b"", b"5", b"b", b"c", b"d", b"e", b"f", b"g", b"h", b"a"],
        }
    )


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_sharded_uniqueness_equals_the_single_task_gate(tmp_path: Path, fmt: str) -> None:
    """Each column has 11 distinct values in 12 rows, its repeat split across shards: the
    merged results (success, unexpected counts) are the single-task gate's."""
    frame = _frame() if fmt == "parquet" else _frame().drop(columns=["blob"])
    data = write_table(frame, (tmp_path / f"in.{fmt}").as_uri(), fmt)
    whole, _ = read_table(data.uri, data.sha256)
    suite = _suite([str(c) for c in frame.columns])
    _, single = g.validate_dataset(whole, suite, None, CONFIG)
    partials = []
    for shard in split_dataset(data.uri, data.sha256, (tmp_path / "s").as_uri(), shard_count=3):
        part, _ = read_table(shard.uri, shard.sha256)
        partial = validate_shard(part, shard, suite, None, CONFIG)
        partials.append(json.loads(partial_bytes(partial)))
    result, merged = merge_partials(partials, suite, CONFIG)
    assert result.verdict.value == "fail", result.message  # uniqueness fails everywhere
    assert _observed(merged) == _observed(single)
    counts = [r for r in _observed(single) if r[2] is not None]
    assert counts and all(r[2] == 2 for r in counts)  # the repeat is seen, not merged away
