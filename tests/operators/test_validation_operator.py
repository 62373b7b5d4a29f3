"""DataValidationOperator: real GX and screens, evidence, quarantine, fail on poisoned data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.include.generator import generate
from tests.operators.fakes import FakeTaskInstance


def _ti(run_id: str) -> FakeTaskInstance:
    return FakeTaskInstance(run_id)


def _operator(dataset: object, reference: object = None, **kwargs: object):  # type: ignore[no-untyped-def]
    from mlsecops_provider.operators.validation import DataValidationOperator

    return DataValidationOperator(
        task_id="validate", dataset=dataset, reference=reference, **kwargs
    )


def test_clean_batch_passes_with_data_docs_and_quarantine(tmp_path: Path) -> None:
    reference = write_table(generate(1500, seed=7), (tmp_path / "ref.parquet").as_uri())
    current = write_table(
        generate(1500, seed=11, outlier_rate=0.004), (tmp_path / "cur.parquet").as_uri()
    )
    out = _operator(current.to_dict(), reference.to_dict(), quarantine=True).execute(
        {"ti": _ti("manual__validate_clean")}
    )
    assert out["verdict"] in ("pass", "warn")
    assert (
        Path(out["data_docs_uri"].removeprefix("file://")).read_text().startswith("<!DOCTYPE html>")
    )
    kept = pd.read_parquet(out["dataset"]["uri"].removeprefix("file://"))
    report = Path(out["evidence_uri"].removeprefix("file://")).read_text()
    assert '"quarantined"' in report
    assert len(kept) < 1500  # the injected outliers left the training data, into quarantine


def test_poisoned_batch_fails_naming_the_screens(tmp_path: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    reference = write_table(generate(1500, seed=7), (tmp_path / "ref.parquet").as_uri())
    poisoned = generate(1500, seed=11, drift=True, label_flip_rate=0.3, outlier_rate=0.05)
    current = write_table(poisoned, (tmp_path / "poisoned.parquet").as_uri())
    ti = _ti("manual__validate_poisoned")
    with pytest.raises(AirflowFailException, match="gate data_validation fail"):
        _operator(current.to_dict(), reference.uri).execute({"ti": ti})
    report = Path(ti.xcom["_link_EvidenceLink"].removeprefix("file://")).read_text()
    for screen in ("drift", "label_shift", "outliers"):
        assert f'"{screen}"' in report


def test_missing_suite_is_an_error_verdict(tmp_path: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    data = write_table(generate(100), (tmp_path / "d.parquet").as_uri())
    with pytest.raises(AirflowFailException, match="gate data_validation error"):
        _operator(data.to_dict(), suite=str(tmp_path / "absent.json")).execute(
            {"ti": _ti("manual__validate_error")}
        )


def test_expected_drift_warns_but_poisoning_still_fails(tmp_path: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    reference = write_table(generate(800, seed=101), (tmp_path / "ref.parquet").as_uri())
    drifted = write_table(generate(800, seed=103, drift=True), (tmp_path / "d.parquet").as_uri())
    with pytest.raises(AirflowFailException, match="screens failed"):  # unexpected drift blocks
        _operator(drifted.to_dict(), reference.uri).execute({"ti": _ti("manual__drift_blocks")})
    out = _operator(drifted.to_dict(), reference.uri, drift_expected="True").execute(
        {"ti": _ti("manual__drift_expected")}
    )
    assert out["verdict"] == "warn"
    poisoned = generate(800, seed=103, drift=True, label_flip_rate=0.3, outlier_rate=0.05)
    bad = write_table(poisoned, (tmp_path / "p.parquet").as_uri())
    with pytest.raises(AirflowFailException, match="outliers"):
        _operator(bad.to_dict(), reference.uri, drift_expected="True").execute(
            {"ti": _ti("manual__drift_poisoned")}
        )
