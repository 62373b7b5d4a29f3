"""Digest unions by bucket range: the same counts as in memory, files private and removed."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.shards import buckets, stats


def _shards(dtype: str, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if dtype == "<u8":
        pool = rng.integers(0, 2**64 - 1, 3000, dtype=np.uint64, endpoint=True)
    else:
        pool = np.frombuffer(rng.bytes(12 * 3000), dtype="S12")
    pool = np.concatenate([pool, pool[:5]])  # a few values in two shards
    return [np.unique(rng.choice(pool, 900)) for _ in range(6)]


@pytest.mark.parametrize("dtype", ["S12", "<u8"])
@pytest.mark.parametrize("limit", [1, 50, None])
def test_distinct_count_by_ranges_equals_the_count_in_memory(dtype: str, limit: int | None) -> None:
    arrays = _shards(dtype, 1)
    expected = len(np.unique(np.concatenate(arrays)))
    with buckets.DigestSpill() as spill:
        held = [spill.add(stats.pack(a), dtype) for a in arrays]
        chunks = list(buckets.ranges([held], limit))
        assert sum(len(np.unique(c)) for (c,) in chunks) == expected
        for (chunk,) in chunks:  # within the limit, or one bucket read alone
            assert len(chunk) <= (limit or buckets.RANGE_ENTRIES) or (
                len(np.unique(buckets._buckets(np.sort(chunk)))) == 1
            )
        assert len(chunks) > (900 if limit == 1 else 0)
        assert buckets.distinct_count(held, dtype) == expected
    assert buckets.distinct_count([stats.pack(a) for a in arrays], dtype) == expected


def test_sorted_order_and_buckets_agree_for_bytes_and_integers() -> None:
    """Buckets are the leading bits in the arrays' sort order, so a range is a contiguous
    slice of every sorted array (digests with leading zero bytes included)."""
    digests = np.array([b"\x00" * 12, b"\x00\x40" + b"\x01" * 10, b"\xff" * 12], dtype="S12")
    assert buckets._buckets(np.sort(digests)).tolist() == [0, 1, 1023]
    numbers = np.array([0, 2**54, 2**64 - 1], dtype=np.uint64)
    assert buckets._buckets(numbers).tolist() == [0, 1, 1023]


def test_repeats_across_and_within_shards_merge_exactly() -> None:
    key = stats.digest_key("9" * 64)
    import pandas as pd

    pieces = [pd.Series(["a", "b", "b", "c"]), pd.Series(["c", "d"]), pd.Series(["e", "e", "f"])]
    parts = [stats.digest_counts(p, key) for p in pieces]
    assert buckets.merge_digest_counts(parts) == (6, 3)  # a, d, f once; b, c, e repeat
    with buckets.DigestSpill() as spill:
        spilled = [{k: spill.add(v, "S12") if k != "multi_counts" else v for k, v in p.items()}
                   for p in parts]  # fmt: skip
        assert buckets.merge_digest_counts(spilled) == (6, 3)


def test_spill_folder_is_private_and_removed_on_close() -> None:
    spill = buckets.DigestSpill()
    held = spill.add(stats.pack(np.arange(10, dtype="<u8")), "<u8")
    folder = os.path.dirname(held.path)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert held.read(0, buckets.BUCKETS).tolist() == list(range(10))
    spill.close()
    assert not os.path.exists(folder)


def test_not_a_packed_array_is_a_data_error() -> None:
    with buckets.DigestSpill() as spill, pytest.raises(DataError, match="not a packed"):
        spill.add("not base64!", "S12")
    with pytest.raises(DataError, match="not a packed"):
        buckets.distinct_count([["a list"]], "S12")
