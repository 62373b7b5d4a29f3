"""Expectations over shards: per-shard statistics and their exact merge.

Three kinds (anything else cannot be merged: the merge's verdict is ``error``):

* **row-wise map expectations** (:data:`ROW_MAPS`): GX runs on each shard (``mostly``
  removed); element, missing and unexpected counts add up, and GX's own ``_validate`` decides
  on the merged counts, so ``mostly`` is applied exactly as GX applies it;
* **aggregate expectations** (:data:`AGGREGATES`): each shard keeps the statistic the
  expectation needs (row count, columns, min/max, sum and count, value digests, counts
  around the median's bounds), the merge evaluates GX's ``_validate`` on the merged metric;
* expectations whose rows depend on other rows (``unique`` is handled through digests; but
  ``increasing``, z-scores, outliers, compound uniqueness, ...) are not merged.

Exact means: counts, min/max, distinct counts and uniqueness are exact (digest collisions
aside: 96-bit keys); integer sums are exact; float sums and means are equal up to summation
order; the median's *verdict* is exact (its value is not kept: "observed" says so).
No raw value of a column that may hold PII enters a partial: its min/max/median-neighbours
are not kept (the expectation then cannot be merged), its distinct values are digests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.shards.buckets import distinct_count, merge_digest_counts
from mlsecops_provider.core.shards.stats import (
    DIGEST_BYTES,
    column_key,
    digest_counts,
    pack,
    threshold_counts,
    value_digests,
)

if TYPE_CHECKING:
    import pandas as pd

ROW_MAPS = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_value_lengths_to_be_between",
        "expect_column_value_lengths_to_equal",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
        "expect_column_values_to_match_regex_list",
        "expect_column_values_to_not_match_regex_list",
        "expect_column_values_to_match_strftime_format",
        "expect_column_values_to_be_dateutil_parseable",
        "expect_column_values_to_be_json_parseable",
        "expect_column_values_to_match_json_schema",
        "expect_column_pair_values_to_be_equal",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_in_set",
        "expect_multicolumn_sum_to_equal",
        "expect_select_column_values_to_be_unique_within_record",
    }
)
TABLE = frozenset(
    {
        "expect_table_row_count_to_be_between",
        "expect_table_row_count_to_equal",
        "expect_table_column_count_to_be_between",
        "expect_table_column_count_to_equal",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_columns_to_match_set",
        "expect_column_to_exist",
    }
)
EXTREMES = {"expect_column_min_to_be_between": "min", "expect_column_max_to_be_between": "max"}
MOMENTS = {"expect_column_sum_to_be_between": "sum", "expect_column_mean_to_be_between": "mean"}
DISTINCT = frozenset(
    {
        "expect_column_values_to_be_unique",
        "expect_column_proportion_of_unique_values_to_be_between",
        "expect_column_unique_value_count_to_be_between",
        "expect_column_proportion_of_non_null_values_to_be_between",
    }
)
SETS = frozenset(
    {
        "expect_column_distinct_values_to_be_in_set",
        "expect_column_distinct_values_to_contain_set",
        "expect_column_distinct_values_to_equal_set",
    }
)
MEDIAN = "expect_column_median_to_be_between"
AGGREGATES = TABLE | set(EXTREMES) | set(MOMENTS) | DISTINCT | SETS | {MEDIAN}
MERGEABLE = ROW_MAPS | AGGREGATES
NOT_MERGEABLE = "cannot be merged across shards"


def kind_of(expectation_type: str) -> str:
    if expectation_type in ROW_MAPS:
        return "map"
    return "aggregate" if expectation_type in AGGREGATES else "unsupported"


def _numeric(series: pd.Series) -> bool:
    from pandas.api import types

    return types.is_numeric_dtype(series) and not types.is_bool_dtype(series)


def _scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def shard_statistic(
    frame: pd.DataFrame, config: Any, sensitive: frozenset[str], key: bytes
) -> dict[str, Any]:
    """What one aggregate expectation needs from one shard (no raw value of ``sensitive``)."""
    etype, kwargs = config.type, dict(config.kwargs)
    if etype in TABLE:
        return {}
    column = str(kwargs.get("column"))
    if column not in frame.columns:
        return {"missing": True}
    series = frame[column]
    nonnull = series.dropna()
    if etype in EXTREMES or etype == MEDIAN:
        if not _numeric(series):
            return {"unsupported": "not a numeric column"}
        if etype in EXTREMES:
            if column in sensitive:
                return {"unsupported": "the column may hold PII (its extremes are raw values)"}
            value = getattr(nonnull, EXTREMES[etype])() if len(nonnull) else None
            return {"value": _scalar(value)}
        values = series.to_numpy(dtype="float64", na_value=float("nan"))
        bounds = {b: kwargs[b] for b in ("min_value", "max_value") if kwargs.get(b) is not None}
        keep = column not in sensitive
        return {
            "n": int(len(nonnull)),
            "bounds": {b: threshold_counts(values, float(t), keep) for b, t in bounds.items()},
        }
    if etype in MOMENTS:
        if not _numeric(series):
            return {"unsupported": "not a numeric column"}
        total = nonnull.sum()
        return {"sum": _scalar(total), "count": int(len(nonnull))}
    key = column_key(key, column)  # one value has unrelated digests in two columns
    if etype in DISTINCT:
        return {"rows": len(series), "nonnull": int(len(nonnull)), **digest_counts(series, key)}
    return _set_statistic(nonnull, kwargs.get("value_set") or [], key)


def _set_statistic(nonnull: pd.Series, value_set: Sequence[Any], key: bytes) -> dict[str, Any]:
    import numpy as np

    wanted = {v: i for i, v in enumerate(value_set)}
    present, others = set(), []
    for value in nonnull.unique().tolist():
        if value in wanted:
            present.add(wanted[value])
        else:
            others.append(value)
    digests = np.sort(value_digests(others, key))
    return {"present": sorted(present), "others": pack(digests)}


def merged_metrics(
    config: Any, parts: Sequence[Mapping[str, Any]], rows: int, columns: list[str]
) -> dict[str, Any]:
    """The GX metrics of an aggregate expectation from every shard's statistic."""

    etype, kwargs = config.type, dict(config.kwargs)
    if etype in TABLE:
        return {
            "table.row_count": rows,
            "table.columns": columns,
            "table.column_count": len(columns),
        }
    column = kwargs.get("column")
    if any(p.get("missing") for p in parts):
        raise _ColumnMissing(f"column {column!r} does not exist in the batch")
    reasons = {p["unsupported"] for p in parts if p.get("unsupported")}
    if reasons:
        raise DataError(f"{etype} on column {column!r} {NOT_MERGEABLE}: {sorted(reasons)[0]}")
    if etype == MEDIAN:
        return {}
    if etype in EXTREMES:
        values = [p["value"] for p in parts if p["value"] is not None]
        pick = min if EXTREMES[etype] == "min" else max
        return {f"column.{EXTREMES[etype]}": pick(values) if values else None}
    if etype in MOMENTS:
        total, count = sum(p["sum"] for p in parts), sum(p["count"] for p in parts)
        mean = total / count if count else None
        return {"column.sum": total, "column.mean": mean}
    if etype in DISTINCT:
        distinct, singles = merge_digest_counts(parts)
        nonnull = sum(p["nonnull"] for p in parts)
        nulls = sum(p["rows"] for p in parts) - nonnull
        return {
            "table.row_count": sum(p["rows"] for p in parts),
            "column_values.nonnull.unexpected_count": nulls,
            "column_values.unique.unexpected_count": nonnull - singles,
            "column.distinct_values.count": distinct,
            "column.unique_proportion": distinct / nonnull if nonnull else 0.0,
            "column.non_null_proportion": nonnull / rows if rows else 0.0,
        }
    others = distinct_count([p["others"] for p in parts], f"S{DIGEST_BYTES}")
    present = set().union(*(set(p["present"]) for p in parts))
    value_set = list(kwargs.get("value_set") or [])
    missing = [v for i, v in enumerate(value_set) if i not in present]
    return {
        "column.distinct_values.not_in_set.count": others,
        "column.distinct_values.not_in_set": [],
        "column.distinct_values.missing_from_column.count": len(missing),
        "column.distinct_values.missing_from_column": [],
        "mlsecops.distinct_count": len(present) + others,
    }


class _ColumnMissing(DataError):
    """The expectation's column is not in the batch (a failed expectation, as in GX)."""


def merge_map(config: Any, parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A map expectation's GX result from every shard's counts."""
    errors = [p["exception"] for p in parts if p.get("exception")]
    if errors:
        return _error_item(config, errors[0])
    metric = config.to_domain_obj().map_metric
    rows = sum(int(p["element_count"] or 0) for p in parts)
    unexpected = sum(int(p["unexpected_count"] or 0) for p in parts)
    has_missing = all(p.get("missing_count") is not None for p in parts)
    missing = sum(int(p.get("missing_count") or 0) for p in parts) if has_missing else 0
    if metric == "column_values.nonnull":
        missing = unexpected
    metrics = {
        "table.row_count": rows,
        "column_values.nonnull.unexpected_count": missing,
        f"{metric}.unexpected_count": unexpected,
        f"{metric}.unexpected_values": [],
        f"{metric}.unexpected_index_list": None,
        f"{metric}.unexpected_index_query": None,
        f"{metric}.filtered_row_count": rows - missing,
    }
    return _gx_item(config, metrics)


def merge_aggregate(
    config: Any, parts: Sequence[Mapping[str, Any]], rows: int, columns: list[str]
) -> dict[str, Any]:
    try:
        metrics = merged_metrics(config, parts, rows, columns)
    except _ColumnMissing as err:
        return _error_item(config, str(err))
    if config.type == MEDIAN:
        return _median_item(config, parts)
    return _gx_item(config, metrics)


def _gx_item(config: Any, metrics: Mapping[str, Any]) -> dict[str, Any]:
    from great_expectations.core import ExpectationValidationResult

    expectation = config.to_domain_obj()
    raw = expectation._validate(
        metrics, runtime_configuration={"result_format": {"result_format": "BASIC"}}
    )
    result = ExpectationValidationResult(
        success=bool(raw.get("success")), expectation_config=config, result=raw.get("result", {})
    )
    return dict(result.to_json_dict())


def _error_item(config: Any, message: str) -> dict[str, Any]:
    info = {"raised_exception": True, "exception_message": message, "exception_traceback": None}
    return {
        "success": False,
        "expectation_config": config.to_json_dict(),
        "result": {},
        "meta": {},
        "exception_info": info,
    }


def _median_side(n: int, stat: Mapping[str, Any], k: int) -> int:
    """Sign of ``v_(k) - t`` (1-based order statistic) from the counts around ``t``."""
    if stat["lt"] >= k:
        return -1
    return 0 if stat["le"] >= k else 1


def _median_vs(n: int, stat: Mapping[str, Any]) -> int | None:
    """Sign of ``median - t`` from merged counts; None when it cannot be decided."""
    m = n // 2
    if n % 2:
        return _median_side(n, stat, m + 1)
    low, high = _median_side(n, stat, m), _median_side(n, stat, m + 1)
    if low == high or (low == 0 and high > 0) or (low < 0 and high == 0):
        return low if low == high else (1 if low == 0 else -1)
    if stat.get("max_lt") is None or stat.get("min_gt") is None:
        return None
    median = (stat["max_lt"] + stat["min_gt"]) / 2
    return (median > stat["t"]) - (median < stat["t"])


def _median_item(config: Any, parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    kwargs = dict(config.kwargs)
    n = sum(p["n"] for p in parts)
    if n == 0:
        return _error_item(config, "the column has no non-null values (no median)")
    success, said = True, []
    for bound, strict_key, ok_sign in (
        ("min_value", "strict_min", 1),
        ("max_value", "strict_max", -1),
    ):
        if kwargs.get(bound) is None:
            continue
        stats = [p["bounds"][bound] for p in parts]
        merged = _merge_threshold(stats, float(kwargs[bound]))
        sign = _median_vs(n, merged)
        if sign is None:
            raise DataError(f"{MEDIAN} on {kwargs.get('column')!r} {NOT_MERGEABLE}: undecided")
        ok = sign == ok_sign or (sign == 0 and not kwargs.get(strict_key))
        success = success and ok
        said.append(f"{'>' if ok_sign > 0 else '<'}{'' if kwargs.get(strict_key) else '='} "
                    f"{kwargs[bound]}: {'yes' if ok else 'no'}")  # fmt: skip
    observed = f"median {'; '.join(said)} (exact rank counts over shards)"
    item = _gx_item(config, {"column.median": 0.0})
    item.update(success=success)
    item["result"] = {"observed_value": observed}
    return item


def _merge_threshold(stats: Sequence[Mapping[str, Any]], threshold: float) -> dict[str, Any]:
    def pick(name: str, fn: Any) -> Any:
        values = [s.get(name) for s in stats if s.get(name) is not None]
        return fn(values) if values else None

    return {
        "t": threshold,
        "lt": sum(s["lt"] for s in stats),
        "le": sum(s["le"] for s in stats),
        "max_lt": pick("max_lt", max) if all("max_lt" in s for s in stats) else None,
        "min_gt": pick("min_gt", min) if all("min_gt" in s for s in stats) else None,
    }
