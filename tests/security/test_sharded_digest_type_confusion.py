"""Attack: two different values share a value digest (type confusion: "5" vs 5 vs 5.0 vs True,
bytes vs str, surrogates, huge integers, numpy scalars, NA/None), so a sharded uniqueness or
distinct count would merge them; or a numpy scalar digests unlike the Python value it equals.

Proves: every value of a broad set of look-alikes gets its own digest, whichever list it is
digested in (vectorised SipHash for all-string / all-integer lists, value by value otherwise).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlsecops_provider.core.shards.stats import DIGEST_BYTES, digest_key, value_digests

KEY = digest_key("a" * 64)

# Values that differ (as data) but look alike as text, as numbers or as bytes.
LOOK_ALIKES: list[Any] = [
    "5",
    5,
    5.0,
    5.5,
    True,
    False,
    0,
    1,
    "1",
    1.0,
    "True",
    "true",
    b"5",
    b"1",
    b"True",
    "",
    b"",
    "0",
    0.0,
    "i5",
    "s5",
    "f5.0",
    "y5",
    "b5",
    "bTrue",
    "\x00",
    "5\x00",
    "\x005",
    "\ud800",
    "\udcff",
    "\ud800\udc00",
    "\U00010000",
    "é",
    "e\u0301",
    -1,
    "-1",
    2**63,
    2**64 - 1,
    2**64,
    10**30,
    "18446744073709551615",
    -(2**63),
    -(2**63) - 1,
    None,
    pd.NA,
    float("inf"),
    float("-inf"),
    "inf",
    "None",
    "<NA>",
    "nan",
    pd.Timestamp(0),
    "1970-01-01 00:00:00",
    np.datetime64(0, "ns"),
]


def _hex(values: list[Any]) -> list[str]:
    digests = value_digests(values, KEY)
    assert digests.dtype == np.dtype(f"S{DIGEST_BYTES}") and len(digests) == len(values)
    return [bytes(d).hex() for d in digests.tolist()]


def test_look_alike_values_never_share_a_digest() -> None:
    """Different values (by type or content) have different digests, all in one list."""
    digests = _hex(LOOK_ALIKES)
    assert len(set(digests)) == len(LOOK_ALIKES)


def test_each_value_digests_the_same_alone_and_in_any_mixed_list() -> None:
    """Which function digests a value depends on the value alone: homogeneous lists (the
    vectorised path), mixed lists and the value alone give one digest."""
    alone = {i: _hex([v])[0] for i, v in enumerate(LOOK_ALIKES)}
    strings = [i for i, v in enumerate(LOOK_ALIKES) if isinstance(v, str)]
    integers = [i for i, v in enumerate(LOOK_ALIKES) if type(v) is int]
    for group in (strings, integers, list(range(len(LOOK_ALIKES)))):
        got = _hex([LOOK_ALIKES[i] for i in group])
        assert got == [alone[i] for i in group]
    for i in range(len(LOOK_ALIKES)):  # each next to a string and next to an integer
        assert _hex([LOOK_ALIKES[i], "x"])[0] == alone[i]
        assert _hex([7, LOOK_ALIKES[i]])[1] == alone[i]


@pytest.mark.parametrize(
    ("numpy_value", "python_value"),
    [
        (np.int64(5), 5),
        (np.int8(-3), -3),
        (np.uint64(2**64 - 1), 2**64 - 1),
        (np.uint64(2**63), 2**63),
        (np.float64(5.0), 5.0),
        (np.float32(0.5), 0.5),
        (np.str_("ab"), "ab"),
        (np.float64(-0.0), 0.0),
    ],
)
def test_numpy_scalars_digest_as_the_python_value(numpy_value: Any, python_value: Any) -> None:
    """A numpy scalar digests as the Python value it equals, alone or among others (a
    uint64 above 2**63 does not wrap to a negative int64 on the vectorised path)."""
    assert _hex([numpy_value]) == _hex([python_value])
    assert _hex([numpy_value, python_value, 1]) == _hex([python_value, python_value, 1])
    assert _hex([numpy_value, "x"])[0] == _hex([python_value])[0]


def test_numpy_bool_digests_as_python_bool() -> None:
    """np.True_ == True, so it must digest as True (an object column holding both would be
    counted as two distinct values by the sharded merge, one by the single-task gate)."""
    assert _hex([np.True_]) == _hex([True])
    assert _hex([np.False_, 1]) == _hex([False, 1])


def test_an_integer_too_long_for_text_fails_instead_of_colliding() -> None:
    """An integer past Python's 4300-digit text limit raises (the shard task fails: no
    pass), it is never truncated into another value's digest."""
    with pytest.raises(ValueError):
        value_digests([10**5000], KEY)
    with pytest.raises(ValueError):
        value_digests([10**5000, "x"], KEY)


def test_digests_depend_on_the_key() -> None:
    """Another input (another key) gives other digests for the same values."""
    other = value_digests(LOOK_ALIKES, digest_key("b" * 64))
    mine = value_digests(LOOK_ALIKES, KEY)
    assert not np.isin(other, mine).any()
