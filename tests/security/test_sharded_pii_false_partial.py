"""Attack: a partial claiming no residual PII for a shard whose output holds some."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.storage import sha256_bytes
from tests.core.pii.test_sharded import deid, merge, run_shards, write_input

__all__ = ["deid"]


def _forge(part: dict, raw: bytes, output_uri: str, columns: list[str]) -> None:
    """Write the raw bytes as the shard's output and a partial claiming 0 residual; point
    the shard task's result at both (full control of the artifact area and XCom)."""
    path = Path(output_uri.removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    partial_path = Path(part["partial"]["uri"].removeprefix("file://"))
    partial = json.loads(partial_path.read_text())
    for tally in partial["residual"].values():
        tally.update(rows_with_pii=0, rate=0.0, entity_types={}, example_rows=[])
    output = {"uri": output_uri, "sha256": sha256_bytes(raw), "rows": partial["rows"],
              "columns": columns}  # fmt: skip
    partial.update(output=output, blocks=False, residual_rows=0)
    payload = json.dumps(partial).encode()
    partial_path.write_bytes(payload)
    part.update(output=output, residual_rows=0)
    part["partial"]["sha256"] = sha256_bytes(payload)


def _in_schema(raw: bytes, model: Path) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.ParquetFile(model).schema_arrow
    table = pq.read_table(pa.BufferReader(raw)).select(schema.names)
    sink = pa.BufferOutputStream()
    pq.write_table(table.cast(schema), sink)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_partial_claiming_zero_residual_is_checked_against_the_output(
    deid, tmp_path: Path, fmt: str
) -> None:
    """Proves the merge does not take a partial's residual claim on trust: shard 5 of 7
    really holds an SSN (so it wrote no output); a forged output with the raw rows and a
    consistent forged partial claiming 0 residual is caught by the merge's own rules scan
    of the output, and nothing is published."""
    work = tmp_path / "w"
    plan, digest, parts = run_shards(deid, write_input(tmp_path, fmt, residual_at=44), work, 7)
    victim = parts[4]
    assert victim["output"] is None and victim["residual_rows"] == 1
    raw = Path(victim["shard"]["uri"].removeprefix("file://")).read_bytes()
    columns = parts[0]["output"]["columns"]
    if fmt == "parquet":  # the raw rows in the de-identified schema, so only values differ
        raw = _in_schema(raw, Path(parts[0]["output"]["uri"].removeprefix("file://")))
    _forge(victim, raw, parts[0]["output"]["uri"].replace("00000", "00004"), columns)
    with pytest.raises(DataError, match="claims no residual PII"):
        merge(deid, plan, digest, parts, work, fmt)
    assert not (work / f"deidentified.{fmt}").exists()


def test_a_partial_claiming_an_output_despite_its_residual_is_refused(deid, tmp_path: Path) -> None:
    """Proves the merge re-judges the partial's own numbers: a partial that keeps its
    residual tally but claims an output is refused before any byte is merged."""
    work = tmp_path / "w"
    plan, digest, parts = run_shards(deid, write_input(tmp_path, "csv", residual_at=44), work, 7)
    victim = parts[4]
    partial_path = Path(victim["partial"]["uri"].removeprefix("file://"))
    partial = json.loads(partial_path.read_text())
    output = dict(parts[3]["output"])
    partial.update(output=output, blocks=False)
    payload = json.dumps(partial).encode()
    partial_path.write_bytes(payload)
    victim.update(output=output)
    victim["partial"]["sha256"] = sha256_bytes(payload)
    with pytest.raises(DataError, match="residual PII above the maximum"):
        merge(deid, plan, digest, parts, work, "csv")
    assert not (work / "deidentified.csv").exists()
