"""Sharded data validation: the same verdicts, failures and figures as the single task."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlsecops_provider.core.data.datasets import read_table, write_table
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.shards.split import split_dataset
from mlsecops_provider.core.validation import gate as g
from mlsecops_provider.core.validation.poisoning import PoisoningConfig
from mlsecops_provider.core.validation.sharded import partial_bytes, validate_shard
from mlsecops_provider.core.validation.sharded_merge import merge_partials
from mlsecops_provider.core.validation.suite import Suite, load_suite, parse_suite
from mlsecops_provider.include.generator import generate

SUITE = "include/suites/credit_risk.json"
ROOT = Path(__file__).resolve().parents[3]
CONFIG = g.ValidationConfig(screens=PoisoningConfig(label_column="default"), render_html=False)
MEDIAN = "expect_column_median_to_be_between"  # verdict exact, its value not kept


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate(1200, seed=7)


def _sharded(
    uri: str, sha: str, folder: Path, count: int, suite: Any, reference: Any, config: Any = CONFIG
) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    shards = split_dataset(uri, sha, (folder / f"shards{count}").as_uri(), shard_count=count)
    assert len(shards) == count
    parts = []
    for shard in shards:
        frame, _ = read_table(shard.uri, shard.sha256)
        partial = validate_shard(frame, shard, suite, reference, config)
        parts.append(json.loads(partial_bytes(partial)))  # through JSON, as the operator stores it
    result, details = merge_partials(parts, suite, config)
    return result, details, parts


def _rows(details: dict[str, Any], skip_median: bool) -> list[tuple[Any, ...]]:
    return [
        (
            r["index"],
            r["type"],
            r["status"],
            None if skip_median and r["type"] == MEDIAN else r["observed"],
        )
        for r in details["expectations"]
    ]


def _same(single: tuple[Any, Any], sharded: tuple[Any, Any], count: int) -> None:
    (r1, d1), (r2, d2) = single, sharded
    assert r2.verdict == r1.verdict, (r1.message, r2.message)
    assert r2.message == r1.message
    assert _rows(d2, count > 1) == _rows(d1, count > 1)
    metrics = {k: v for k, v in r2.metrics.items() if k != "shards"}
    assert metrics == r1.metrics
    assert d2["screens"] == d1["screens"]
    strip = lambda fs: [{k: v for k, v in f.items() if k != "observed"} for f in fs]  # noqa: E731
    assert strip(r2.findings) == strip(r1.findings)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize(
    "batch",
    [
        {},
        {"drift": True, "label_flip_rate": 0.3, "outlier_rate": 0.05},
        {"outlier_rate": 0.03},
    ],
    ids=["clean", "poisoned", "outliers"],
)
def test_demo_suite_same_verdict_on_1_3_7_shards(
    tmp_path: Path, reference: pd.DataFrame, fmt: str, batch: dict[str, Any]
) -> None:
    data = write_table(generate(1400, seed=11, **batch), (tmp_path / f"cur.{fmt}").as_uri(), fmt)
    frame, _ = read_table(data.uri, data.sha256)
    suite = load_suite(str(ROOT / SUITE))
    single = g.validate_dataset(frame, suite, reference, CONFIG)
    for count in (1, 3, 7):
        result, details, _ = _sharded(data.uri, data.sha256, tmp_path, count, suite, reference)
        _same(single, (result, details), count)
    if batch.get("drift"):
        assert single[0].verdict is Verdict.FAIL


def _suite(*expectations: dict[str, Any]) -> dict[str, Any]:
    return {"name": "t", "expectations": list(expectations)}


def _failing_frame() -> pd.DataFrame:
    frame = generate(1400, seed=12)
    frame.loc[1300:1309, "age"] = 150  # only in the last of 7 shards
    frame.loc[20, "customer_id"] = frame.loc[1390, "customer_id"]  # a duplicate across shards
    return frame


def _every_mergeable_kind(columns: list[str]) -> Suite:
    """One expectation of each mergeable kind, several failing on the frame of
    :func:`_failing_frame`."""
    return parse_suite(
        _suite(
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "age", "min_value": 18, "max_value": 100},
            },
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "age", "min_value": 18, "max_value": 100, "mostly": 0.99},
            },
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "customer_id"}},
            {
                "type": "expect_column_proportion_of_unique_values_to_be_between",
                "kwargs": {"column": "customer_id", "min_value": 1.0},
            },
            {
                "type": "expect_column_unique_value_count_to_be_between",
                "kwargs": {"column": "region", "min_value": 5, "max_value": 5},
            },
            {
                "type": "expect_column_max_to_be_between",
                "kwargs": {"column": "age", "max_value": 100},
            },
            {
                "type": "expect_column_min_to_be_between",
                "kwargs": {"column": "age", "min_value": 18},
            },
            {
                "type": "expect_column_sum_to_be_between",
                "kwargs": {"column": "loan_term_months", "min_value": 0},
            },
            {
                "type": "expect_column_distinct_values_to_be_in_set",
                "kwargs": {"column": "region", "value_set": ["north", "south", "east", "west"]},
            },
            {
                "type": "expect_column_distinct_values_to_contain_set",
                "kwargs": {"column": "region", "value_set": ["north", "atlantis"]},
            },
            {
                "type": "expect_column_distinct_values_to_equal_set",
                "kwargs": {"column": "default", "value_set": [0, 1]},
            },
            {
                "type": "expect_column_proportion_of_non_null_values_to_be_between",
                "kwargs": {"column": "age", "min_value": 0.9},
            },
            {"type": "expect_table_row_count_to_equal", "kwargs": {"value": 1400}},
            {
                "type": "expect_table_columns_to_match_ordered_list",
                "kwargs": {"column_list": columns},
            },
            {"type": "expect_column_to_exist", "kwargs": {"column": "no_such_column"}},
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "no_such_column"},
                "severity": "warning",
            },
            {
                "type": "expect_column_median_to_be_between",
                "kwargs": {"column": "age", "min_value": 30, "max_value": 60, "strict_min": True},
            },
        )
    )


def test_a_failure_in_one_shard_only_fails_the_merge(
    tmp_path: Path, reference: pd.DataFrame
) -> None:
    frame = _failing_frame()
    data = write_table(frame, (tmp_path / "cur.parquet").as_uri())
    suite = _every_mergeable_kind(list(frame.columns))
    single = g.validate_dataset(frame, suite, reference, CONFIG)
    assert single[0].verdict is Verdict.FAIL
    for count in (1, 3, 7):
        result, details, _ = _sharded(data.uri, data.sha256, tmp_path, count, suite, reference)
        assert result.verdict is single[0].verdict
        assert [r["status"] for r in details["expectations"]] == [
            r["status"] for r in single[1]["expectations"]
        ]
        failed = {r["index"] for r in details["expectations"] if r["status"] != "pass"}
        assert {0, 2, 3, 5} <= failed and 1 not in failed  # mostly=0.99 tolerates 10 of 1400
        for mine, theirs in zip(details["expectations"], single[1]["expectations"], strict=True):
            if mine["status"] != "error" and mine["type"] != MEDIAN:
                assert mine["observed"] == theirs["observed"], mine["type"]


def test_merge_reading_partials_one_by_one_over_small_digest_ranges_is_the_same(
    tmp_path: Path, reference: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge takes the partials as a one-pass iterable and unites digests range by range
    (here ranges of at most 7 entries, so hundreds of them): the same result as in one go."""
    from mlsecops_provider.core.shards import buckets

    frame = _failing_frame()
    data = write_table(frame, (tmp_path / "cur.parquet").as_uri())
    suite = _every_mergeable_kind(list(frame.columns))
    whole, whole_details, parts = _sharded(data.uri, data.sha256, tmp_path, 7, suite, reference)
    seen: list[int] = []

    def once() -> Any:
        for index, part in enumerate(parts):
            seen.append(index)
            yield part

    calls: list[int] = []
    real = buckets.ranges

    def counted(groups: Any, limit: int | None = None) -> Any:
        for chunk in real(groups, limit):
            calls.append(sum(len(a) for a in chunk))
            yield chunk

    monkeypatch.setattr(buckets, "RANGE_ENTRIES", 7)
    monkeypatch.setattr(buckets, "ranges", counted)
    result, details = merge_partials(once(), suite, CONFIG)
    assert seen == list(range(7))
    assert len(calls) > 100 and max(calls) <= 7 + 1400  # a bucket above the limit reads alone
    assert result.verdict is whole.verdict and result.message == whole.message
    assert result.metrics == whole.metrics and result.findings == whole.findings
    assert details["expectations"] == whole_details["expectations"]
    assert details["screens"] == whole_details["screens"]


def test_expectation_without_exact_merge_is_an_error(
    tmp_path: Path, reference: pd.DataFrame
) -> None:
    data = write_table(generate(900, seed=13), (tmp_path / "cur.parquet").as_uri())
    suite = parse_suite(
        _suite(
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age"}},
            {
                "type": "expect_column_stdev_to_be_between",
                "kwargs": {"column": "age", "min_value": 0},
            },
        )
    )
    result, details, _ = _sharded(data.uri, data.sha256, tmp_path, 3, suite, reference)
    assert result.verdict is Verdict.ERROR
    assert "expect_column_stdev_to_be_between cannot be merged across shards" in result.message
    one, _, _ = _sharded(data.uri, data.sha256, tmp_path, 1, suite, reference)
    assert one.verdict is Verdict.PASS  # one shard: computed exactly as the single task


def test_csv_shards_with_different_dtypes_fail_closed(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": range(30), "b": [1] * 30})
    frame["b"] = frame["b"].astype("object")
    frame.loc[25, "b"] = "x"  # the last shard parses 'b' as text, the others as integers
    data = write_table(frame, (tmp_path / "t.csv").as_uri(), "csv")
    suite = parse_suite(
        _suite({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "b"}})
    )
    result, _, _ = _sharded(data.uri, data.sha256, tmp_path, 3, suite, None)
    assert result.verdict is Verdict.ERROR
    assert re.search(
        r"column 'b' parses as int64 in shard 1/3 but as \w+ in shard 3/3", result.message
    )


def test_batch_basis_outliers_are_skipped_on_shards(
    tmp_path: Path, reference: pd.DataFrame
) -> None:
    data = write_table(generate(900, seed=14), (tmp_path / "cur.parquet").as_uri())
    config = g.ValidationConfig(
        screens=PoisoningConfig(label_column="default", outlier_basis="batch"), render_html=True
    )
    suite = parse_suite(
        _suite({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age"}})
    )
    result, details, _ = _sharded(data.uri, data.sha256, tmp_path, 3, suite, reference, config)
    assert details["screens"]["outliers"]["status"] == "skipped"
    assert "not computed on shards" in details["screens"]["outliers"]["reason"]
    assert "not computed on shards" in result.message
    assert details["data_docs_html"].startswith("<!DOCTYPE html>")


def test_partials_hold_no_raw_pii_and_are_deterministic(
    tmp_path: Path, reference: pd.DataFrame
) -> None:
    frame = generate(900, seed=15)
    data = write_table(frame, (tmp_path / "cur.parquet").as_uri())
    suite = load_suite(str(ROOT / SUITE))
    _, _, parts = _sharded(data.uri, data.sha256, tmp_path, 3, suite, reference)
    _, _, again = _sharded(data.uri, data.sha256, tmp_path, 3, suite, reference)
    assert [partial_bytes(p) for p in parts] == [partial_bytes(p) for p in again]
    text = b"".join(partial_bytes(p) for p in parts).decode()
    for column in ("email", "full_name", "ssn", "phone", "customer_id", "street_address"):
        for value in frame[column].astype(str).head(50):
            assert value not in text, column


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_value": 6},
        {"min_value": 6, "strict_min": True},
        {"max_value": 5.9},
        {"min_value": 5, "max_value": 7},
        {"max_value": 6, "strict_max": True},
    ],
)
@pytest.mark.parametrize("rows", [12, 13])
def test_median_verdict_is_exact_between_two_middle_values(
    tmp_path: Path, kwargs: dict[str, Any], rows: int
) -> None:
    values = [1, 9, 2, 5, 30, 7, 3, 8, 4, 11, 12, 40, 6.5][:rows]  # 12 rows: median (5+7)/2
    frame = pd.DataFrame({"x": [float(v) for v in values]})
    data = write_table(frame, (tmp_path / "m.parquet").as_uri())
    expectation = {"type": MEDIAN, "kwargs": {"column": "x", **kwargs}}
    suite = parse_suite(_suite(expectation))
    config = g.ValidationConfig(screens=PoisoningConfig(enabled=False), render_html=False)
    single = g.validate_dataset(frame, suite, None, config)
    result, _, _ = _sharded(data.uri, data.sha256, tmp_path, 3, suite, None, config)
    assert result.verdict is single[0].verdict


def test_quarantine_over_shards_judges_the_kept_rows_like_the_single_task(
    tmp_path: Path, reference: pd.DataFrame
) -> None:
    from mlsecops_provider.core.validation.poisoning import screen_dataset

    data = write_table(
        generate(1400, seed=16, outlier_rate=0.03), (tmp_path / "q.parquet").as_uri()
    )
    frame, _ = read_table(data.uri, data.sha256)
    suite = load_suite(str(ROOT / SUITE))
    screens = screen_dataset(frame, reference, CONFIG.screens, quarantine=True)
    assert screens.outlier_mask is not None and screens.outlier_mask.sum() > 0
    kept = frame[~screens.outlier_mask]
    single = g.validate_dataset(kept, suite, reference, CONFIG, None, screens)
    shards = split_dataset(data.uri, data.sha256, (tmp_path / "qs").as_uri(), shard_count=3)
    parts = [
        json.loads(
            partial_bytes(
                validate_shard(
                    read_table(s.uri, s.sha256)[0], s, suite, reference, CONFIG, quarantine=True
                )
            )
        )  # fmt: skip
        for s in shards
    ]
    result, details = merge_partials(parts, suite, CONFIG)
    _same(single, (result, details), 3)
    assert details["quarantine"] == {
        "kept_rows": len(kept),
        "quarantined_rows": int(screens.outlier_mask.sum()),
    }


def test_quarantine_over_shards_without_reference_is_an_error(tmp_path: Path) -> None:
    data = write_table(generate(900, seed=17), (tmp_path / "q.parquet").as_uri())
    suite = parse_suite(
        _suite({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age"}})
    )
    shards = split_dataset(data.uri, data.sha256, (tmp_path / "qs").as_uri(), shard_count=3)
    parts = [
        validate_shard(read_table(s.uri, s.sha256)[0], s, suite, None, CONFIG, quarantine=True)
        for s in shards
    ]
    result, _ = merge_partials(parts, suite, CONFIG)
    assert result.verdict is Verdict.ERROR
    assert (
        "quarantine over several shards needs outliers judged against a reference" in result.message
    )


def test_ks_against_a_large_reference_reports_its_error_bound(tmp_path: Path) -> None:
    reference = generate(6000, seed=8)  # more than KS_GRID distinct incomes: a gridded KS
    data = write_table(generate(1400, seed=18), (tmp_path / "k.parquet").as_uri())
    frame, _ = read_table(data.uri, data.sha256)
    suite = parse_suite(
        _suite({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age"}})
    )
    single = g.validate_dataset(frame, suite, reference, CONFIG)
    result, details, _ = _sharded(data.uri, data.sha256, tmp_path, 3, suite, reference)
    assert result.verdict is single[0].verdict
    mine = details["screens"]["drift"]["metrics"]["columns"]["annual_income"]
    theirs = single[1]["screens"]["drift"]["metrics"]["columns"]["annual_income"]
    assert 0 < mine["ks_error_bound"] < 0.01
    assert mine["ks_statistic"] <= theirs["ks_statistic"] + 1e-9
    assert theirs["ks_statistic"] <= mine["ks_statistic"] + mine["ks_error_bound"] + 1e-9
    assert mine["psi"] == theirs["psi"]  # PSI bins are fixed by the reference: exact
