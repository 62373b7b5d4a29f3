"""Shared set-up of the sharded-validation attack tests: a split input and its partials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlsecops_provider.core.data.datasets import read_table, write_table
from mlsecops_provider.core.shards.split import split_dataset
from mlsecops_provider.core.validation import gate as g
from mlsecops_provider.core.validation.poisoning import PoisoningConfig
from mlsecops_provider.core.validation.sharded import partial_bytes, validate_shard
from mlsecops_provider.core.validation.suite import parse_suite
from mlsecops_provider.include.generator import generate

CONFIG = g.ValidationConfig(screens=PoisoningConfig(label_column="default"), render_html=False)
SUITE = parse_suite(
    {
        "name": "attack",
        "expectations": [
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age"}},
        ],
    }
)
RUN = {"dag_id": "d", "run_id": "r1"}


def partials(
    folder: Path, seed: int = 11, count: int = 3, run: dict[str, str] = RUN, suite: Any = SUITE
) -> list[dict[str, Any]]:
    data = write_table(generate(600, seed=seed), (folder / f"in{seed}.parquet").as_uri())
    prefix = (folder / f"s{seed}-{count}").as_uri()
    out = []
    for shard in split_dataset(data.uri, data.sha256, prefix, shard_count=count):
        frame, _ = read_table(shard.uri, shard.sha256)
        partial = validate_shard(frame, shard, suite, None, CONFIG, run=run)
        out.append(json.loads(partial_bytes(partial)))
    return out
