"""Sharded de-identification gives the single-task path's bytes, verdict and counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.pii.chunks import ChunkSink, open_source
from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig
from mlsecops_provider.core.pii.sharded import deidentify_shard, plan_shards
from mlsecops_provider.core.pii.sharded_merge import Merged, merge_shards
from mlsecops_provider.core.pii.stream import run_stream
from mlsecops_provider.core.shards.split import split_dataset

KEY = b"sharded-test-key-0123456789abcdef"
CHUNK = 10
ROWS = 70
PEOPLE = ["Anna Lee", "Mark Davis", "Susan Clark", "Omar Haddad", "Lucy Brennan"]
TIMING = ("seconds_detect", "seconds_transform", "seconds_verify", "rows_per_second")


@pytest.fixture(scope="module")
def deid() -> Deidentifier:
    return Deidentifier.prepare(PIIConfig(seed=3, chunk_rows=CHUNK))


def rows(residual_at: int | None = None) -> list[dict[str, Any]]:
    """Notes naming people whose only other mention is the name column of a far row (in
    another shard for 3 and 7 shards): only the table-wide deny list catches them."""
    out = []
    for i in range(ROWS):
        out.append({
            "id": i,
            "note": f"Paid the invoice on time, no further questions from the customer {i}",
            "full_name": PEOPLE[i % len(PEOPLE)],
            "email": f"user{i}@example.org",
            "code": f"C{i:04d}",
        })  # fmt: skip
    out[2]["note"] = "Paid the invoice, per zorblatt the account is fine now thanks"
    out[-1]["full_name"] = "Quinn Zorblatt"
    out[-3]["note"] = "Called back later, thanks wendelgast for the quick help today"
    out[5]["full_name"] = "Ida Wendelgast"
    if residual_at is not None:
        out[residual_at]["code"] = "SSN 219-09-9999"
    return out


def write_input(tmp_path: Path, fmt: str, residual_at: int | None = None) -> Path:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.DataFrame(rows(residual_at))
    path = tmp_path / f"in.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.set_column(4, "code", table.column("code").dictionary_encode())
        pq.write_table(table, path, row_group_size=7)  # row groups across chunk boundaries
    return path


def single(deid: Deidentifier, source: Path, target: Path) -> tuple[Any, bool]:
    with (
        open_source(source.as_uri(), chunk_rows=CHUNK) as chunks,
        ChunkSink(target.as_uri(), chunks.format) as sink,
    ):
        streamed = run_stream(deid, chunks, sink, {"input": f"sha256:{chunks.sha256}"})
        result = streamed.outcome.result
        if not result.verdict.blocks:
            sink.publish()
    return streamed, target.exists()


def sharded(deid: Deidentifier, source: Path, work: Path, count: int) -> Merged:
    plan, digest, parts = run_shards(deid, source, work, count)
    return merge(deid, plan, digest, parts, work, source.suffix[1:])


def merge(deid: Deidentifier, plan: Any, digest: str, parts: list, work: Path, fmt: str) -> Merged:
    target = (work / f"deidentified.{fmt}").as_uri()
    return merge_shards(deid.config, plan, digest, json.loads(json.dumps(parts)), KEY, target)


def run_shards(
    deid: Deidentifier, source: Path, work: Path, count: int
) -> tuple[Any, str, list[dict[str, Any]]]:
    """Split, plan and every shard task (the merge's inputs)."""
    shards = split_dataset(
        source.as_uri(), None, (work / "shards").as_uri(), shard_count=count, align=CHUNK
    )
    assert len(shards) == count
    plan, digest = plan_shards(deid, [s.to_dict() for s in shards], KEY,
                               (work / "plan.json").as_uri())  # fmt: skip
    parts = []
    for shard in shards:
        name = f"shard-{shard.index:05d}.{shard.format}"
        done = deidentify_shard(deid, plan, digest, shard.to_dict(), KEY,
                                (work / "out" / name).as_uri(),
                                (work / "partials" / f"{name}.json").as_uri())  # fmt: skip
        parts.append(done.to_dict())
    return plan, digest, parts


def comparable(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in (*TIMING, "shards")}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("count", [1, 3, 7])
def test_sharded_output_is_the_single_paths_bytes(
    deid: Deidentifier, tmp_path: Path, fmt: str, count: int
) -> None:
    """1, 3 and 7 shards: byte-identical output, same verdict, counts and report; the names
    known only from another shard's name column are gone from the free text."""
    source = write_input(tmp_path, fmt)
    streamed, published = single(deid, source, tmp_path / f"single.{fmt}")
    merged = sharded(deid, source, tmp_path / "sharded", count)
    assert published and merged.output is not None
    got = Path(merged.output.uri.removeprefix("file://")).read_bytes()
    assert got == (tmp_path / f"single.{fmt}").read_bytes()
    want = streamed.outcome.result
    assert merged.result.verdict == want.verdict
    assert merged.result.subjects == {**want.subjects, "output": f"sha256:{merged.output.sha256}"}
    assert comparable(merged.result.metrics) == comparable(want.metrics)
    assert merged.result.findings == want.findings
    details = {k: v for k, v in merged.details.items() if k != "sharding"}
    assert details == json.loads(json.dumps(streamed.outcome.details))
    text = got.decode("latin-1").lower()
    assert "zorblatt" not in text and "wendelgast" not in text
    assert merged.details["sharding"]["shards"] == count


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_shard_with_residual_pii_fails_the_gate_and_nothing_lands(
    deid: Deidentifier, tmp_path: Path, fmt: str
) -> None:
    """An SSN in a column planned clean, in shard 5 of 7: both paths fail with the same
    counts; that shard writes no output, the merge publishes nothing, and no output,
    partial or plan holds the SSN."""
    source = write_input(tmp_path, fmt, residual_at=44)
    streamed, published = single(deid, source, tmp_path / f"single.{fmt}")
    work = tmp_path / "sharded"
    merged = sharded(deid, source, work, 7)
    assert not published and merged.output is None
    assert merged.result.verdict == streamed.outcome.result.verdict
    assert merged.result.verdict.value == "fail"
    assert comparable(merged.result.metrics) == comparable(streamed.outcome.result.metrics)
    residual = merged.details["residual"]["columns"]["code"]
    assert residual["rows_with_pii"] == 1 and residual["example_rows"] == [44]
    assert not (work / f"deidentified.{fmt}").exists()
    outputs = sorted(p.name for p in (work / "out").iterdir())
    assert "shard-00004.csv" not in outputs and "shard-00004.parquet" not in outputs
    assert len(outputs) == 6
    for path in [*(work / "out").iterdir(), *(work / "partials").iterdir(), work / "plan.json"]:
        assert b"219-09-9999" not in path.read_bytes(), path.name


def test_the_plan_carries_no_name_and_a_rerun_is_idempotent(
    deid: Deidentifier, tmp_path: Path
) -> None:
    """The plan holds digests, not names; re-running plan and shard tasks keeps the digests."""
    source = write_input(tmp_path, "csv")
    first = sharded(deid, source, tmp_path / "w", 3)
    plan_bytes = (tmp_path / "w" / "plan.json").read_bytes()
    partials = {p.name: p.read_bytes() for p in (tmp_path / "w" / "partials").iterdir()}
    for word in ("zorblatt", "wendelgast", "anna", "davis", "user1@", "quinn"):
        assert word.encode() not in plan_bytes.lower()
    second = sharded(deid, source, tmp_path / "w", 3)
    assert (tmp_path / "w" / "plan.json").read_bytes() == plan_bytes
    assert {p.name: p.read_bytes() for p in (tmp_path / "w" / "partials").iterdir()} == partials
    assert first.output is not None and second.output is not None
    assert second.output.sha256 == first.output.sha256


def test_shards_off_the_chunk_grid_are_still_deidentified(
    deid: Deidentifier, tmp_path: Path
) -> None:
    """Shards of 7 rows with 10-row chunks (e.g. a validation merge's kept shards): the plan
    is made from the input's first 10 rows across shards, says it is not aligned, and the
    output has every row, the single path's verdict, and none of the shards' names."""
    import pandas as pd

    source = write_input(tmp_path, "csv")
    streamed, _ = single(deid, source, tmp_path / "single.csv")
    shards = split_dataset(source.as_uri(), None, (tmp_path / "s").as_uri(), shard_rows=7)
    plan, digest = plan_shards(deid, [s.to_dict() for s in shards], KEY,
                               (tmp_path / "plan.json").as_uri())  # fmt: skip
    assert not plan.data["aligned"] and plan.data["sampling"]["from_rows"] == CHUNK
    parts = [deidentify_shard(deid, plan, digest, s.to_dict(), KEY,
                              (tmp_path / "o" / f"{s.index}.csv").as_uri(),
                              (tmp_path / "p" / f"{s.index}.json").as_uri()).to_dict()
             for s in shards]  # fmt: skip
    merged = merge(deid, plan, digest, parts, tmp_path, "csv")
    assert merged.output is not None and merged.result.verdict == streamed.outcome.result.verdict
    frame = pd.read_csv(merged.output.uri.removeprefix("file://"), dtype=str)
    assert len(frame) == ROWS and merged.details["sharding"]["aligned"] is False
    assert not frame["note"].str.lower().str.contains("zorblatt|wendelgast").any()
