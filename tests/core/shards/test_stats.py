"""Mergeable statistics: merged per-shard figures equal the figures of the whole table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from mlsecops_provider.core.shards import stats
from mlsecops_provider.core.shards.buckets import merge_digest_counts


def _ks(ref: np.ndarray, cur: np.ndarray, pieces: int, grid_size: int) -> tuple[float, ...]:
    grid, exact = stats.ks_grid(ref, grid_size)
    ref_cdf = stats.merge_cdf_counts([stats.cdf_counts(ref, grid)])
    cur_cdf = stats.merge_cdf_counts(
        [stats.cdf_counts(p, grid) for p in np.array_split(cur, pieces)]
    )
    d, bound, d_hi = stats.ks_from_counts(ref_cdf, cur_cdf, exact)
    return d, bound, d_hi, float(exact)


@pytest.mark.parametrize("seed", range(12))
def test_ks_on_the_full_reference_grid_is_scipys_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = np.round(rng.normal(0, 1, int(rng.integers(20, 3000))), seed % 3)
    cur = np.round(rng.normal(rng.uniform(-0.3, 0.3), 1, int(rng.integers(20, 12000))), seed % 3)
    d, bound, _, exact = _ks(ref, cur, 7, stats.KS_GRID)
    assert exact and bound == 0.0
    expected = scipy_stats.ks_2samp(ref, cur)
    assert stats.ks_pvalue(d, len(ref), len(cur)) == (expected.statistic, expected.pvalue)


@pytest.mark.parametrize("seed", range(8))
def test_ks_on_a_coarse_grid_brackets_the_true_statistic(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    ref, cur = rng.normal(0, 1, 5000), rng.normal(0.05 * seed, 1, 4000)
    d, bound, d_hi, exact = _ks(ref, cur, 5, 64)
    true = scipy_stats.ks_2samp(ref, cur).statistic
    assert not exact
    assert d <= true + 1e-12 and true <= d_hi + 1e-12
    assert bound == pytest.approx(d_hi - d) and bound < 0.06  # ~1/64 of each sample's mass


def test_fixed_edge_histograms_add_up() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(0, 1, 1000)
    values[::17] = np.nan
    edges = np.quantile(values[~np.isnan(values)], [0.1, 0.5, 0.9])
    whole = stats.bin_counts(values, edges)
    merged = np.sum([stats.bin_counts(v, edges) for v in np.array_split(values, 6)], axis=0)
    assert merged.tolist() == whole and whole[-1] == int(np.isnan(values).sum())


def test_digest_counts_merge_distinct_and_repeated_values_exactly() -> None:
    key = stats.digest_key("0" * 64)
    names = {c: f"{c}-person@example.com" for c in "abcdef"}
    series = pd.Series([names.get(c) for c in "abca-deefb"])
    parts = [stats.digest_counts(series.iloc[i : i + 3], key) for i in range(0, 10, 3)]
    distinct, singles = merge_digest_counts(parts)
    assert distinct == series.nunique() == 6
    assert singles == int((series.dropna().value_counts() == 1).sum()) == 3
    assert not any(name in str(parts) for name in names.values())  # digests only


def test_a_value_has_one_digest_whatever_else_its_column_holds() -> None:
    """The vectorised path (all strings, all integers) and the value-by-value path (mixed
    columns) digest a value alike, and values of different types never share a digest."""
    key = stats.digest_key("3" * 64)
    mixed = ["5", 5, np.int64(5), 5.0, True, None, "\ud800", 2**70, "x"]
    one_by_one = [stats.value_digests([v], key)[0] for v in mixed]
    assert stats.value_digests(mixed, key).tolist() == one_by_one
    assert stats.value_digests(["5", "x"], key).tolist() == [one_by_one[0], one_by_one[8]]
    assert stats.value_digests([5, 2**70], key).tolist() == [one_by_one[1], one_by_one[7]]
    assert one_by_one[1] == one_by_one[2]  # a numpy integer is the integer
    assert len({one_by_one[i] for i in (0, 1, 3, 4, 5, 6)}) == 6


def test_digests_are_keyed_by_the_input() -> None:
    one = stats.value_digests(["alice@example.com"], stats.digest_key("1" * 64))
    two = stats.value_digests(["alice@example.com"], stats.digest_key("2" * 64))
    assert one.tolist() != two.tolist()


def test_packed_arrays_round_trip_and_bad_text_is_a_data_error() -> None:
    from mlsecops_provider.core.errors import DataError

    array = np.array([1, 2, 3], dtype="<u8")
    assert stats.unpack(stats.pack(array), "<u8").tolist() == [1, 2, 3]
    with pytest.raises(DataError):
        stats.unpack("not base64!", "<u8")


def test_threshold_counts_around_a_value() -> None:
    values = np.array([1.0, 2.0, 2.0, 3.0, np.nan])
    assert stats.threshold_counts(values, 2.0, True) == {
        "lt": 1, "le": 3, "max_lt": 1.0, "max_le": 2.0, "min_gt": 3.0, "min_ge": 2.0,
    }  # fmt: skip
    assert "max_lt" not in stats.threshold_counts(values, 2.0, False)
