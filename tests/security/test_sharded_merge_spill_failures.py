"""Attack: break the merge while it spills (malformed digest fields mid-stream, a disk that
fills while spilling, a partial stream that raises or is interrupted) to get a verdict other
than ``error``, an unhandled crash on bad input, or spill files left in the task's folder.

Proves: malformed digest arrays (wrong types, lengths not a multiple of the digest size, not
base64) give verdict ``error`` whichever shard carries them; an environment failure while
spilling (disk full, interrupt) never yields a verdict but raises; in every case the spill
folder is gone afterwards.
"""

from __future__ import annotations

import base64
import copy
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.errors import StorageError
from mlsecops_provider.core.shards import buckets
from mlsecops_provider.core.validation.sharded_merge import merge_partials
from mlsecops_provider.core.validation.suite import parse_suite
from tests.security._sharded_validation import CONFIG, partials

SUITE = parse_suite(
    {
        "name": "spill-failures",
        "expectations": [
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "customer_id"}},
            {
                "type": "expect_column_distinct_values_to_be_in_set",
                "kwargs": {"column": "region", "value_set": ["north"]},
            },
        ],
    }
)


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return partials(tmp_path_factory.mktemp("spill-failures"), suite=SUITE)


def _odd_length() -> str:
    return base64.b64encode(b"\x00" * 13).decode()


BAD_VALUES = {
    "an-integer": 5,
    "a-list": ["AAAA"],
    "none": None,
    "a-dict": {"x": 1},
    "not-base64": "!!!",
    "odd-length": _odd_length(),
    "bytes-of-text": "AAAA" * 3 + "A",
}


def _damaged(parts: list[dict[str, Any]], where: int, field: str, value: Any) -> list[Any]:
    out = copy.deepcopy(parts)
    if field == "not_in_ref":
        out[where]["screens"]["duplicates"]["not_in_ref"] = value
    else:
        index = "0" if field in ("distinct", "multi") else "1"
        out[where]["aggregates"][index][field] = value
    return out


@pytest.mark.parametrize("value", sorted(BAD_VALUES))
@pytest.mark.parametrize("field", ["distinct", "multi", "others", "not_in_ref"])
@pytest.mark.parametrize("where", [0, 2])
def test_malformed_digest_fields_are_an_error_verdict_and_leave_no_spill(
    parts: list[dict[str, Any]], private_tmp: Path, where: int, field: str, value: str
) -> None:
    stream = iter(_damaged(parts, where, field, BAD_VALUES[value]))
    result, details = merge_partials(stream, SUITE, CONFIG)
    assert result.verdict.value == "error", (result.verdict, result.message)
    assert "error" in details
    assert os.listdir(private_tmp) == []


def test_disk_full_while_spilling_never_decides_and_leaves_no_spill(
    parts: list[dict[str, Any]], private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = buckets.Spilled
    made = []

    class Full(real):  # type: ignore[misc, valid-type]
        def __init__(self, array: Any, path: str | None = None) -> None:
            made.append(path)
            if path and len(made) > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            super().__init__(array, path)

    monkeypatch.setattr(buckets, "Spilled", Full)
    try:
        result, _ = merge_partials(iter(parts), SUITE, CONFIG)
    except OSError:
        pass
    else:
        assert result.verdict.value == "error", result.message
    assert len(made) > 3
    assert os.listdir(private_tmp) == []


def test_a_stream_raising_mid_way_fails_closed_and_leaves_no_spill(
    parts: list[dict[str, Any]], private_tmp: Path
) -> None:
    """The operator's reader raises (an unreadable or foreign partial) after two partials."""

    def stream() -> Iterator[dict[str, Any]]:
        yield parts[0]
        yield parts[1]
        raise StorageError("s3://bucket/partial-3.json: cannot read from S3 (SlowDown)")

    result, details = merge_partials(stream(), SUITE, CONFIG)
    assert result.verdict.value == "error" and "SlowDown" in details["error"]
    assert os.listdir(private_tmp) == []


def test_an_interrupt_mid_stream_leaves_no_spill(
    parts: list[dict[str, Any]], private_tmp: Path
) -> None:
    def stream() -> Iterator[dict[str, Any]]:
        yield parts[0]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        merge_partials(stream(), SUITE, CONFIG)
    assert os.listdir(private_tmp) == []


def test_the_same_partial_twice_in_the_stream_is_refused(
    parts: list[dict[str, Any]], private_tmp: Path
) -> None:
    """One shard's digests spilled twice would count its values as cross-shard repeats;
    the cover check must refuse it rather than decide."""
    result, _ = merge_partials(iter([parts[0], parts[1], parts[1], parts[2]]), SUITE, CONFIG)
    assert result.verdict.value == "error"
    assert os.listdir(private_tmp) == []
