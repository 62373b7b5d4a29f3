"""Attack: a de-identified shard swapped for one with raw PII between shard task and merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsecops_provider.core.errors import DataError, DigestMismatchError
from mlsecops_provider.core.storage import sha256_bytes
from tests.core.pii.test_sharded import deid, merge, run_shards, write_input

__all__ = ["deid"]


def _leftovers(work: Path) -> list[str]:
    return [p.name for p in work.rglob("*") if p.name.startswith(".pii-output.")]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_output_shard_swapped_for_raw_pii_is_refused_by_its_digest(
    deid, tmp_path: Path, fmt: str
) -> None:
    """Proves the merge verifies every output shard against the digest its shard task
    returned: the raw input shard (names, e-mails) put in place of shard 2's output is
    refused with both digests, and no merged dataset (nor a temporary file) appears."""
    work = tmp_path / "w"
    plan, digest, parts = run_shards(deid, write_input(tmp_path, fmt), work, 3)
    output = Path(parts[1]["output"]["uri"].removeprefix("file://"))
    raw = Path(parts[1]["shard"]["uri"].removeprefix("file://")).read_bytes()
    output.write_bytes(raw)
    with pytest.raises(DigestMismatchError) as refused:
        merge(deid, plan, digest, parts, work, fmt)
    assert parts[1]["output"]["sha256"] in str(refused.value)
    assert sha256_bytes(raw) in str(refused.value)
    assert not (work / f"deidentified.{fmt}").exists() and not _leftovers(work)


def test_rewriting_the_returned_digest_too_is_refused_by_the_partial(deid, tmp_path: Path) -> None:
    """Proves the partial binds the output: an attacker who swaps the output and edits the
    shard task's returned digest to match is refused (the partial names the real digest),
    and editing the partial as well breaks the partial's own digest."""
    work = tmp_path / "w"
    plan, digest, parts = run_shards(deid, write_input(tmp_path, "csv"), work, 3)
    output = Path(parts[1]["output"]["uri"].removeprefix("file://"))
    raw = Path(parts[1]["shard"]["uri"].removeprefix("file://")).read_bytes()
    output.write_bytes(raw)
    parts[1]["output"]["sha256"] = sha256_bytes(raw)
    with pytest.raises(DataError, match="disagree"):
        merge(deid, plan, digest, parts, work, "csv")
    partial_path = Path(parts[1]["partial"]["uri"].removeprefix("file://"))
    partial = json.loads(partial_path.read_text())
    partial["output"]["sha256"] = sha256_bytes(raw)
    partial_path.write_text(json.dumps(partial))
    with pytest.raises(DigestMismatchError):
        merge(deid, plan, digest, parts, work, "csv")
    assert not (work / "deidentified.csv").exists()
