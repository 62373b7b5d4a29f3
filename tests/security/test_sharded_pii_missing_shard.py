"""Attack: a shard result missing, duplicated, or taken from another input's run."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from mlsecops_provider.core.errors import DataError
from tests.core.pii.test_sharded import deid, merge, run_shards, write_input

__all__ = ["deid"]


def test_a_missing_or_duplicated_shard_is_refused(deid, tmp_path: Path) -> None:
    """Proves the merge publishes only a complete cover of the input: a dropped shard
    result, the same result twice in place of another, or a result of another plan is
    refused and no merged dataset appears."""
    work = tmp_path / "w"
    source = write_input(tmp_path, "csv")
    plan, digest, parts = run_shards(deid, source, work, 3)
    with pytest.raises(DataError, match=r"missing \[1\]"):
        merge(deid, plan, digest, [parts[0], parts[2]], work, "csv")
    with pytest.raises(DataError, match=r"twice \[0\]"):
        merge(deid, plan, digest, [parts[0], parts[0], parts[2]], work, "csv")
    with pytest.raises(DataError, match="exactly once"):
        merge(deid, plan, digest, [*parts, copy.deepcopy(parts[1])], work, "csv")
    other = tmp_path / "other"
    other.mkdir()
    _, _, foreign = run_shards(deid, write_input(other, "csv", residual_at=3), other / "w", 3)
    with pytest.raises(DataError):
        merge(deid, plan, digest, [parts[0], foreign[1], parts[2]], work, "csv")
    assert not (work / "deidentified.csv").exists()
    assert merge(deid, plan, digest, parts, work, "csv").output is not None
