"""Attack: make the merge's spilled digest files outlive it (a bad partial in the middle of
the stream, an exception while uniting) or hold raw values, so that a later reader of the
task's temporary folder finds a shard's data.

Proves: the spill folder is private (0700) while the merge runs, holds the partials'
digests and nothing else (no canary value, tagged or not), and is gone after the merge,
whether it decided, failed closed on a foreign partial or raised.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.shards import buckets
from mlsecops_provider.core.validation.sharded_merge import merge_partials
from mlsecops_provider.core.validation.suite import parse_suite
from tests.security._sharded_validation import CONFIG, partials

SUITE = parse_suite(
    {
        "name": "spill",
        "expectations": [
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "customer_id"}},
            {
                "type": "expect_column_distinct_values_to_be_in_set",
                "kwargs": {"column": "region", "value_set": ["north"]},
            },
        ],
    }
)


def _snapshot(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bytes]]:
    """The spill folder's mode and bytes, seen from inside the merge's first union."""
    seen: list[tuple[int, bytes]] = []
    real = buckets.ranges

    def spy(groups: Any, limit: int | None = None) -> Any:
        files = [s for group in groups for s in group if s.path]
        if files and not seen:
            folder = os.path.dirname(files[0].path)
            data = b"".join(Path(folder, name).read_bytes() for name in sorted(os.listdir(folder)))
            seen.append((os.stat(folder).st_mode & 0o777, data))
        yield from real(groups, limit)

    monkeypatch.setattr(buckets, "ranges", spy)
    return seen


def test_spill_is_private_holds_digests_only_and_is_removed(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = partials(tmp_path, suite=SUITE)
    from mlsecops_provider.core.data.datasets import read_table

    values = read_table((tmp_path / "in11.parquet").as_uri())[0]
    seen = _snapshot(monkeypatch)
    result, _ = merge_partials(iter(parts), SUITE, CONFIG)
    assert result.verdict.value in ("pass", "fail"), result.message
    assert seen and seen[0][0] == 0o700
    spilled = seen[0][1]
    for value in values["customer_id"].astype(str).head(200):
        assert value.encode() not in spilled and b"s" + value.encode() not in spilled
    assert os.listdir(private_tmp) == []


def test_a_foreign_partial_mid_stream_fails_closed_and_leaves_no_spill(
    tmp_path: Path, private_tmp: Path
) -> None:
    parts = partials(tmp_path, suite=SUITE)
    stream = iter([parts[0], parts[1], {"schema": "something else"}, parts[2]])
    result, details = merge_partials(stream, SUITE, CONFIG)
    assert result.verdict.value == "error" and "not a validation partial" in details["error"]
    assert os.listdir(private_tmp) == []


def test_an_exception_while_uniting_leaves_no_spill(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = partials(tmp_path, suite=SUITE)

    def broken(groups: Any, limit: int | None = None) -> Any:
        raise MemoryError("no room")
        yield  # pragma: no cover

    monkeypatch.setattr(buckets, "ranges", broken)
    with pytest.raises(MemoryError):
        merge_partials(parts, SUITE, CONFIG)
    assert os.listdir(private_tmp) == []
