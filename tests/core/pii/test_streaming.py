"""Streaming de-identification: chunks give the single-pass output; residual PII in any
chunk fails and publishes nothing; memory stays bounded on a large file."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.pii.chunks import ChunkSink, open_source
from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig
from mlsecops_provider.core.pii.io import output_bytes, read_source
from mlsecops_provider.core.pii.stream import Streamed, run_stream
from tests.core.pii.test_faithful_output import CSV

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def deidentifier() -> Deidentifier:
    return Deidentifier.prepare(PIIConfig(seed=1))


def _stream(
    deidentifier: Deidentifier, source: Path, target: Path, chunk_rows: int
) -> tuple[Streamed, bool]:
    with (
        open_source(source.as_uri(), chunk_rows=chunk_rows) as chunks,
        ChunkSink(target.as_uri(), chunks.format) as sink,
    ):
        streamed = run_stream(deidentifier, chunks, sink)
        if not streamed.outcome.result.verdict.blocks:
            sink.publish()
    return streamed, target.exists()


def _single(deidentifier: Deidentifier, source: Path) -> tuple[Any, bytes]:
    read = read_source(source.as_uri())
    outcome = deidentifier.run(read.frame)
    return outcome, output_bytes(read, outcome)


def _parquet(tmp_path: Path, rows: int = 45) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "i32": pa.array(range(rows), pa.int32()),
            "ratio": pa.array([i / 7 for i in range(rows)], pa.float64()),
            "cat": pa.array(["a", "b", None] * (rows // 3)).dictionary_encode(),
            "name": pa.array(["Mary Johnson", "Robert Smith", "Linda Garcia"] * (rows // 3)),
            "email": pa.array([f"user{i}@example.org" for i in range(rows)], pa.large_string()),
            "code": pa.array([f"{i:05d}" for i in range(rows)]),
        }
    )
    path = tmp_path / "in.parquet"
    pq.write_table(table, path, row_group_size=10)  # several row groups, one chunk
    return path


def test_one_chunk_gives_the_bytes_of_the_single_pass(
    deidentifier: Deidentifier, tmp_path: Path
) -> None:
    """An input that fits in one chunk: the streamed file is byte for byte the old output."""
    csv_in = tmp_path / "in.csv"
    csv_in.write_text(CSV)
    for source in (csv_in, _parquet(tmp_path)):
        target = tmp_path / f"out{source.suffix}"
        streamed, published = _stream(deidentifier, source, target, chunk_rows=50_000)
        outcome, expected = _single(deidentifier, source)
        assert published and streamed.chunks == 1
        assert target.read_bytes() == expected, source.name
        assert streamed.outcome.result.verdict == outcome.result.verdict
        assert streamed.outcome.result.metrics["rows"] == outcome.result.metrics["rows"]


def test_many_chunks_give_the_same_cells_rows_and_order(
    deidentifier: Deidentifier, tmp_path: Path
) -> None:
    """CSV in 7-row chunks and Parquet in 10-row chunks: the same cell values, in order."""
    import pandas as pd
    import pyarrow.parquet as pq

    csv_in = tmp_path / "in.csv"
    csv_in.write_text(CSV)
    streamed, published = _stream(deidentifier, csv_in, tmp_path / "out.csv", chunk_rows=7)
    assert published and streamed.chunks == 7 and streamed.rows == 43
    _, expected = _single(deidentifier, csv_in)
    read = {"dtype": str, "keep_default_na": False}
    got = pd.read_csv(tmp_path / "out.csv", **read)
    assert got.equals(pd.read_csv(io.BytesIO(expected), **read))
    assert (tmp_path / "out.csv").read_bytes() == expected  # CSV text appends exactly

    parquet_in = _parquet(tmp_path)
    streamed, published = _stream(deidentifier, parquet_in, tmp_path / "o.parquet", 10)
    assert published and streamed.chunks == 5
    _, expected = _single(deidentifier, parquet_in)
    got_table, want = pq.read_table(tmp_path / "o.parquet"), pq.read_table(io.BytesIO(expected))
    assert got_table.schema == want.schema
    assert got_table.to_pylist() == want.to_pylist()
    assert pq.ParquetFile(tmp_path / "o.parquet").metadata.num_row_groups == 5


def test_residual_pii_only_in_the_last_chunk_fails_and_publishes_nothing(
    deidentifier: Deidentifier, tmp_path: Path
) -> None:
    """An SSN in a clean column of the last chunk only: the gate fails, no output, no temp."""
    lines = CSV.splitlines()
    lines[-1] = lines[-1].replace("row 39", "SSN 219-09-9999")
    source = tmp_path / "in.csv"
    source.write_text("\n".join(lines) + "\n")
    out_dir = tmp_path / "out"
    streamed, published = _stream(deidentifier, source, out_dir / "out.csv", chunk_rows=7)
    result = streamed.outcome.result
    assert result.verdict.value == "fail" and not published
    assert list(out_dir.iterdir()) == []  # no temporary file left either
    residual = streamed.outcome.details["residual"]["columns"]["comment"]
    assert residual["rows_with_pii"] == 1 and residual["example_rows"] == [42]
    assert residual["rows_scanned"] == 42  # every non-empty cell (one comment is empty)
    assert "219-09-9999" not in json.dumps([result.to_dict(), streamed.outcome.details])


def test_names_of_a_later_chunk_are_denied_in_earlier_free_text(tmp_path: Path) -> None:
    """A surname that appears only in the name column of the last chunk is still removed
    from the free text of the first chunk (the deny list covers the whole input)."""
    people = ["Anna Lee", "Mark Davis", "Susan Clark"]
    rows = [
        f'{i},"Paid the invoice on time, no further questions from the customer {i}",'
        f"{people[i % 3]}"
        for i in range(30)
    ]
    rows[0] = '0,"Paid the invoice, customer Zorblatt said thanks for the quick help",Anna Lee'
    rows[-1] = "29,Paid the invoice on time with no further questions at all,Quinn Zorblatt"
    source = tmp_path / "in.csv"
    source.write_text("id,note,full_name\n" + "\n".join(rows) + "\n")
    deid = Deidentifier.prepare(PIIConfig(seed=2))
    streamed, published = _stream(deid, source, tmp_path / "out.csv", chunk_rows=10)
    assert streamed.chunks == 3
    assert published, streamed.outcome.result.findings
    assert "Zorblatt" not in (tmp_path / "out.csv").read_text()


MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from mlsecops_provider.core.pii.chunks import ChunkSink, open_source
    from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig
    from mlsecops_provider.core.pii.stream import run_stream

    source, target, chunk_rows = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    deid = Deidentifier.prepare(PIIConfig(seed=1, chunk_rows=chunk_rows))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open_source(source.as_uri(), chunk_rows=chunk_rows) as chunks:
        with ChunkSink(target.as_uri(), chunks.format) as sink:
            streamed = run_stream(deid, chunks, sink)
            sink.publish()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kb": before, "after_kb": after, "rows": streamed.rows,
                      "chunks": streamed.chunks, "verdict": streamed.outcome.result.verdict.value}))
    """
)


def write_large_csv(path: Path, megabytes: int) -> int:
    """A CSV of about ``megabytes`` MB: ids, amounts, short codes, a long clean text column
    of few distinct values and an e-mail column (transformed whole). Returns the rows."""
    block_rows = 5000
    header = "id,amount,code,status,email,padding\n"
    pad = ["alpha" * 24, "bravo" * 24, "charlie" * 17, "delta" * 24]
    rows = 0
    with path.open("w") as handle:
        handle.write(header)
        while handle.tell() < megabytes * 1_000_000:
            handle.write(
                "".join(
                    f"{rows + i},{(rows + i) % 997}.{i % 100:02d},C{i % 50:04d},"
                    f"{'open' if i % 3 else 'closed'},user{i % 400}@example.org,{pad[i % 4]}\n"
                    for i in range(block_rows)
                )
            )
            rows += block_rows
    return rows


def _growth_mb(source: Path, target: Path, chunk_rows: int) -> tuple[float, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(source), str(target), str(chunk_rows)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=1200,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return (figures["after_kb"] - figures["before_kb"]) / 1024, figures


@pytest.mark.slow
def test_peak_memory_stays_bounded_on_a_200_mb_csv(tmp_path: Path) -> None:
    """Peak RSS growth (over the loaded engine) on a ~200 MB CSV in 20,000-row chunks is
    that of a ~20 MB CSV give or take 50 MB, and well under the file's size: memory is
    bounded by the chunk, not the input (the single pass holds all of it, several times)."""
    growth = {}
    for megabytes in (20, 200):
        source = tmp_path / f"large{megabytes}.csv"
        rows = write_large_csv(source, megabytes)
        growth[megabytes], figures = _growth_mb(source, tmp_path / "out.csv", 20_000)
        assert figures["rows"] == rows and figures["verdict"] == "pass", figures
        source.unlink()
    print(f"peak RSS growth: {growth[20]:.0f} MB (20 MB file), {growth[200]:.0f} MB (200 MB)")
    assert growth[200] - growth[20] < 50, growth
    assert growth[200] < 200, growth
