"""Faithful output: untransformed columns exactly as they were, rows and order kept."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig
from mlsecops_provider.core.pii.io import output_bytes, read_source

CSV = (
    "code,ratio,name,email,comment,empty\n"
    '007,0.1840,Mary Johnson,mary.johnson@example.com,"plain, with comma",\n'
    "0420,1.0000,Robert Smith,robert.smith@example.com,ok,\n"
    "0001,2.50,Linda Garcia,linda.garcia@example.com,,\n"
) + "".join(
    f"{i:04d},{i / 3:.4f},James Brown,james.brown{i}@example.com,row {i},\n" for i in range(40)
)


def _run(path: Path) -> tuple[Any, Any]:
    source = read_source(path.as_uri())
    outcome = Deidentifier.prepare(PIIConfig(seed=1)).run(source.frame)
    return source, outcome


def test_csv_untransformed_columns_are_the_same_text(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "in.csv"
    path.write_text(CSV)
    source, outcome = _run(path)
    assert outcome.result.verdict.value == "pass"
    written = output_bytes(source, outcome)
    back = pd.read_csv(io.BytesIO(written), dtype=str, keep_default_na=False)
    before = pd.read_csv(io.StringIO(CSV), dtype=str, keep_default_na=False)
    assert len(back) == len(before)
    for column in ("code", "ratio", "comment", "empty"):
        assert back[column].tolist() == before[column].tolist(), column
    assert back["code"][0] == "007" and back["ratio"][0] == "0.1840"
    assert back["name"].eq("<PERSON>").all() and back["email"].eq("<EMAIL_ADDRESS>").all()
    assert written.decode().splitlines()[1].startswith('007,0.1840,<PERSON>,<EMAIL_ADDRESS>,"plain')


def test_parquet_schema_and_types_are_kept(tmp_path: Path) -> None:
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 60
    table = pa.table(
        {
            "i32": pa.array(range(rows), pa.int32()),
            "f32": pa.array([i / 7 for i in range(rows)], pa.float32()),
            "dec": pa.array([decimal.Decimal(f"{i}.10") for i in range(rows)], pa.decimal128(9, 2)),
            "cat": pa.array(["a", "b", None] * 20).dictionary_encode(),
            "ts": pa.array([1_700_000_000_000 + i for i in range(rows)], pa.timestamp("ms", "UTC")),
            "nullable": pa.array([None if i % 5 == 0 else i for i in range(rows)], pa.int64()),
            "email": pa.array([f"user{i}@example.org" for i in range(rows)], pa.large_string()),
        }
    )
    path = tmp_path / "in.parquet"
    pq.write_table(table, path)
    source, outcome = _run(path)
    out = pq.read_table(io.BytesIO(output_bytes(source, outcome)))
    assert out.num_rows == rows and out.column_names == table.column_names
    for name in ("i32", "f32", "dec", "cat", "ts", "nullable"):
        assert out.schema.field(name).type == table.schema.field(name).type, name
        assert out.column(name).equals(table.column(name)), name
    assert out.schema.field("email").type == pa.large_string()
    assert set(out.column("email").to_pylist()) == {"<EMAIL_ADDRESS>"}
    assert out.to_pandas()["nullable"].isna().sum() == table.to_pandas()["nullable"].isna().sum()


def test_timestamps_amounts_and_ids_pass_untouched(tmp_path: Path) -> None:
    """Text that only looks like digits-PII (timestamps, big amounts, versions, ticket ids)
    neither fails the full scan nor changes."""
    import pandas as pd

    rows = 50
    text = "ts,amount,ticket,epoch_ms\n" + "".join(
        f"2024-01-{i % 28 + 1:02d} 10:22:{i % 60:02d},{1234567890 + i}.12,T{i:07d},"
        f"{1_700_000_000_000 + i}\n"
        for i in range(rows)
    )
    path = tmp_path / "in.csv"
    path.write_text(text)
    source, outcome = _run(path)
    assert outcome.result.verdict.value == "pass", outcome.result.findings
    back = pd.read_csv(io.BytesIO(output_bytes(source, outcome)), dtype=str)
    before = pd.read_csv(io.StringIO(text), dtype=str)
    assert back.equals(before)
