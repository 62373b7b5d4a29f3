"""Attack: a suite relies on an expectation whose result cannot be merged across shards."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.validation.sharded_merge import merge_partials
from mlsecops_provider.core.validation.suite import parse_suite
from tests.security._sharded_validation import CONFIG, RUN, partials

ROW_DEPENDENT = [
    ("expect_column_values_to_be_increasing", {"column": "age"}),
    (
        "expect_column_value_z_scores_to_be_less_than",
        {"column": "age", "threshold": 3, "double_sided": True},
    ),
    ("expect_column_stdev_to_be_between", {"column": "age", "min_value": 0}),
    (
        "expect_column_quantile_values_to_be_between",
        {"column": "age", "quantile_ranges": {"quantiles": [0.5], "value_ranges": [[0, 200]]}},
    ),
    ("expect_compound_columns_to_be_unique", {"column_list": ["age", "region"]}),
]


@pytest.mark.parametrize(("etype", "kwargs"), ROW_DEPENDENT, ids=[t for t, _ in ROW_DEPENDENT])
def test_unmergeable_expectation_is_an_error_not_a_pass(
    tmp_path: Path, etype: str, kwargs: dict[str, object]
) -> None:
    """Per-shard results of row-dependent expectations would be wrong: the verdict is error."""
    suite = parse_suite({"name": "s", "expectations": [{"type": etype, "kwargs": kwargs}]})
    result, _ = merge_partials(partials(tmp_path, suite=suite), suite, CONFIG, run=RUN)
    assert result.verdict is Verdict.ERROR
    assert f"{etype} cannot be merged across shards" in result.message
