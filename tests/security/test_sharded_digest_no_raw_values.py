"""Attack: get raw values of a text column into a sharded validation partial (through the
uniqueness / distinct-count digests, the values outside an expected set, or the categories
and labels new to the reference in the screens), where the vectorised digest path could
leak the tagged text it hashes.

Proves: a partial holds none of a canary column's values (nor their tagged text), in any
encoding JSON gives them, while the merged counts still see every distinct canary.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pandas as pd

from mlsecops_provider.core.data.datasets import read_table, write_table
from mlsecops_provider.core.shards.split import split_dataset
from mlsecops_provider.core.validation import gate as g
from mlsecops_provider.core.validation.poisoning_config import PoisoningConfig
from mlsecops_provider.core.validation.sharded import partial_bytes, validate_shard
from mlsecops_provider.core.validation.sharded_merge import merge_partials
from mlsecops_provider.core.validation.suite import parse_suite

ROWS = 30
CANARIES = [f"CANARY{i:03d}zq" for i in range(ROWS)]
SUITE = parse_suite(
    {
        "name": "canary",
        "expectations": [
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "token"}},
            {
                "type": "expect_column_unique_value_count_to_be_between",
                "kwargs": {"column": "token", "min_value": ROWS, "max_value": ROWS},
            },
            {
                "type": "expect_column_distinct_values_to_be_in_set",
                "kwargs": {"column": "token", "value_set": ["allowed"]},
            },
            {
                "type": "expect_column_distinct_values_to_be_in_set",
                "kwargs": {"column": "segment", "value_set": ["a", "b"]},
            },
        ],
    }
)


def _frame(tokens: list[str], segments: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"token": tokens, "segment": segments, "amount": [float(i) for i in range(len(tokens))]}
    )


def test_partials_hold_no_raw_canary_value(tmp_path: Path) -> None:
    """No canary (or its 's'-tagged text, or their base64) in any partial's bytes."""
    frame = _frame(CANARIES, [CANARIES[i] if i % 3 else "a" for i in range(ROWS)])
    reference = _frame(["r"] * 10, ["a", "b"] * 5)
    config = g.ValidationConfig(screens=PoisoningConfig(label_column="segment"), render_html=False)
    data = write_table(frame, (tmp_path / "in.parquet").as_uri())
    partials = []
    for shard in split_dataset(data.uri, data.sha256, (tmp_path / "s").as_uri(), shard_count=3):
        part, _ = read_table(shard.uri, shard.sha256)
        partial = validate_shard(part, shard, SUITE, reference, config)
        raw = partial_bytes(partial)
        for canary in CANARIES:
            for form in (canary, "s" + canary, canary.lower()):
                assert form.encode() not in raw
                assert base64.b64encode(form.encode())[:12] not in raw
        partials.append(json.loads(raw))
    result, details = merge_partials(partials, SUITE, config)
    assert result.verdict.value != "error", result.message
    by_type = {
        (r["expectation_config"]["type"], r["expectation_config"]["kwargs"]["column"]): r
        for r in details["validation_result"]["results"]
    }
    assert by_type[("expect_column_values_to_be_unique", "token")]["success"]
    assert by_type[("expect_column_unique_value_count_to_be_between", "token")]["success"]
    assert not by_type[("expect_column_distinct_values_to_be_in_set", "token")]["success"]
    merged = json.dumps(details, default=str)
    assert not any(canary in merged for canary in CANARIES)
