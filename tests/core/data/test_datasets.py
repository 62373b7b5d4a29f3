"""Datasets: format by content, empty and unreadable input, verify-on-read."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops_provider.core.data.datasets import DatasetRef, read_table, write_table
from mlsecops_provider.core.errors import DataError, DigestMismatchError
from mlsecops_provider.include.generator import PII_COLUMNS, generate, pii_truth


def test_parquet_and_csv_round_trip_with_digest(tmp_path: Path) -> None:
    frame = generate(50, seed=3)
    for fmt, name in (("parquet", "d.bin"), ("csv", "d.data")):  # names do not decide
        ref = write_table(frame, (tmp_path / name).as_uri(), fmt)
        loaded, again = read_table(ref.uri, ref.sha256)
        assert again == ref and again.format == fmt
        assert list(loaded.columns) == list(frame.columns) and len(loaded) == 50
        assert DatasetRef.from_dict(ref.to_dict()) == ref


def test_changed_bytes_fail_verify_on_read(tmp_path: Path) -> None:
    ref = write_table(generate(20), (tmp_path / "d.parquet").as_uri())
    path = tmp_path / "d.parquet"
    write_table(generate(20, seed=99), path.as_uri())  # replaced after it was recorded
    with pytest.raises(DigestMismatchError, match=ref.sha256):
        read_table(ref.uri, ref.sha256)


def test_empty_and_unreadable_datasets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n")
    with pytest.raises(DataError, match="empty"):
        read_table(empty.as_uri())
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x00garbage" + b"PAR1")
    with pytest.raises(DataError, match="cannot parse as parquet"):
        read_table(broken.as_uri())


def test_generator_is_deterministic_and_poisonable() -> None:
    clean = generate(500, seed=5)
    assert clean.equals(generate(500, seed=5))
    assert not clean.equals(generate(500, seed=6))
    poisoned = generate(500, seed=5, label_flip_rate=0.3, outlier_rate=0.05)
    assert (poisoned["default"] != clean["default"]).mean() > 0.2
    assert poisoned["annual_income"].max() > 1e6 > clean["annual_income"].max()
    drifted = generate(500, seed=5, drift=True)
    assert drifted["annual_income"].median() > 1.4 * clean["annual_income"].median()
    truth = pii_truth(clean)
    assert set(truth) == set(PII_COLUMNS) and len(truth["email"][1]) == 500
