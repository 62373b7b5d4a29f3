"""Poisoning screens on the demo generator's batches: each screen catches its attack."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlsecops_provider.core.errors import DataError, PolicyError
from mlsecops_provider.core.policy import section_config
from mlsecops_provider.core.validation.poisoning import (
    PoisoningConfig,
    categorical_psi,
    numeric_psi,
    screen_dataset,
)
from mlsecops_provider.include.generator import LABEL, PII_COLUMNS, TEXT_COLUMN, generate

CONFIG = PoisoningConfig(
    label_column=LABEL, exclude_columns=("customer_id", TEXT_COLUMN, *PII_COLUMNS)
)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate(2000, seed=7)


@pytest.fixture(scope="module")
def poisoned() -> pd.DataFrame:
    return generate(2000, seed=13, label_flip_rate=0.3, outlier_rate=0.05, drift=True)


def statuses(report) -> dict[str, str]:
    return {s.name: s.status for s in report.screens}


def test_clean_batch_with_other_seed_is_not_flagged(reference: pd.DataFrame) -> None:
    report = screen_dataset(generate(2000, seed=11), reference, CONFIG)
    assert statuses(report) == dict.fromkeys(
        ("drift", "label_shift", "outliers", "duplicates"), "pass"
    )
    assert report.get("drift").metrics["columns_screened"] == 10
    assert report.get("drift").metrics["max_psi"] < 0.05
    assert report.get("label_shift").metrics["tvd"] < 0.03
    assert report.get("outliers").metrics["rate"] < 0.01


def test_poisoned_batch_drift(reference: pd.DataFrame, poisoned: pd.DataFrame) -> None:
    drift = screen_dataset(poisoned, reference, CONFIG).get("drift")
    assert drift.status == "fail"
    flagged = {f["column"] for f in drift.findings}
    assert {"annual_income", "debt_to_income", "region"} <= flagged
    assert not flagged & {"age", "purpose", LABEL, "email"}
    income = drift.metrics["columns"]["annual_income"]
    assert income["psi"] > 0.2 and income["ks_statistic"] > 0.1 and income["ks_pvalue"] < 0.01


def test_poisoned_batch_label_shift(reference: pd.DataFrame, poisoned: pd.DataFrame) -> None:
    shift = screen_dataset(poisoned, reference, CONFIG).get("label_shift")
    assert shift.status == "fail"
    assert shift.metrics["tvd"] > 0.1
    assert shift.findings == [{"screen": "label_shift", "column": LABEL, **shift.metrics}]


def test_poisoned_batch_outliers(reference: pd.DataFrame, poisoned: pd.DataFrame) -> None:
    outliers = screen_dataset(poisoned, reference, CONFIG).get("outliers")
    assert outliers.status == "fail"
    assert 0.04 < outliers.metrics["rate"] < 0.2
    assert {"annual_income", "loan_amount"} <= set(outliers.findings[0]["columns"])


def test_each_attack_alone_trips_its_own_screen(reference: pd.DataFrame) -> None:
    flipped = screen_dataset(generate(2000, seed=13, label_flip_rate=0.3), reference, CONFIG)
    assert statuses(flipped) == {
        "drift": "pass",
        "label_shift": "fail",
        "outliers": "pass",
        "duplicates": "pass",
    }
    spiked = screen_dataset(generate(2000, seed=13, outlier_rate=0.05), reference, CONFIG)
    assert spiked.get("outliers").status == "fail"
    assert spiked.get("label_shift").status == "pass"
    drifted = screen_dataset(generate(2000, seed=13, drift=True), reference, CONFIG)
    assert drifted.get("drift").status == "fail"


def test_duplicate_injection(reference: pd.DataFrame) -> None:
    clean = generate(2000, seed=11)
    copied = reference.sample(60, random_state=1)  # 3 % copied from the reference
    repeated = clean.sample(60, random_state=2)  # 3 % repeated within the batch
    batch = pd.concat([clean, copied, repeated], ignore_index=True)
    batch["customer_id"] = [f"X{i}" for i in range(len(batch))]  # ids differ, features repeat
    dupes = screen_dataset(batch, reference, CONFIG).get("duplicates")
    assert dupes.status == "fail"
    assert dupes.metrics["of_reference"] == 60
    assert dupes.metrics["within_batch"] == 60
    assert dupes.metrics["rate"] == pytest.approx(120 / len(batch), abs=1e-6)


def test_without_reference_only_batch_screens_run(poisoned: pd.DataFrame) -> None:
    report = screen_dataset(poisoned, None, CONFIG)
    assert statuses(report) == {
        "drift": "skipped",
        "label_shift": "skipped",
        "outliers": "fail",
        "duplicates": "pass",
    }
    assert report.get("drift").reason == "no reference dataset"
    assert report.get("outliers").metrics["basis"] == "batch"


def test_quarantine_returns_outlier_rows_without_dropping(
    reference: pd.DataFrame, poisoned: pd.DataFrame
) -> None:
    before = poisoned.copy()
    report = screen_dataset(poisoned, reference, CONFIG, quarantine=True)
    assert report.quarantine is not None
    assert len(report.quarantine) == report.get("outliers").metrics["rows"] > 0
    assert report.outlier_mask is not None and report.outlier_mask.sum() == len(report.quarantine)
    assert report.quarantine["annual_income"].max() > 1e6
    pd.testing.assert_frame_equal(poisoned, before)


def test_findings_carry_no_row_values(reference: pd.DataFrame, poisoned: pd.DataFrame) -> None:
    text = repr(screen_dataset(poisoned, reference, CONFIG).to_dict())
    for column in ("customer_id", "email", "ssn", "annual_income"):
        assert str(poisoned[column].iloc[0]) not in text


def test_missing_columns_fail_closed(reference: pd.DataFrame) -> None:
    batch = generate(2000, seed=11).drop(columns=["region", LABEL])
    report = screen_dataset(batch, reference, CONFIG)
    assert report.get("drift").status == "fail"
    assert {"screen": "drift", "column": "region", "reason": "missing from batch"} in report.get(
        "drift"
    ).findings
    assert report.get("label_shift").status == "fail"
    with pytest.raises(DataError, match="label column 'default' is missing from the reference"):
        screen_dataset(reference, batch, CONFIG)


def test_empty_frames_are_errors(reference: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="current dataset is empty"):
        screen_dataset(reference.iloc[:0], reference, CONFIG)
    with pytest.raises(DataError, match="reference dataset is empty"):
        screen_dataset(reference, reference.iloc[:0], CONFIG)


def test_ks_needs_a_minimum_effect_on_large_batches() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 200_000)})
    cur = pd.DataFrame({"x": rng.normal(0.03, 1, 200_000)})
    column = screen_dataset(cur, ref).get("drift").metrics["columns"]["x"]
    assert column["ks_pvalue"] < 1e-6 and column["ks_statistic"] < 0.1
    assert column["drifted"] is False


def test_psi_helpers() -> None:
    rng = np.random.default_rng(1)
    same = rng.normal(size=50_000)
    assert numeric_psi(same, same.copy(), 10) == pytest.approx(0.0, abs=1e-12)
    assert numeric_psi(same, same * 2 + 1, 10) > 0.5
    with_nans = same.copy()
    with_nans[:10_000] = np.nan
    assert numeric_psi(same, with_nans, 10) > 0.2
    psi, new = categorical_psi(pd.Series(list("aabbc")), pd.Series(list("aabbd")))
    assert new == 1 and psi > 0.5


def test_screens_skip_unusable_columns() -> None:
    ref = pd.DataFrame({"zeros": [0] * 99 + [1], "ids": [f"id{i}" for i in range(100)]})
    report = screen_dataset(ref.copy(), ref, PoisoningConfig(max_categories=50))
    assert report.get("outliers").metrics["skipped_columns"] == {
        "zeros": "median absolute deviation is zero"
    }
    assert report.get("drift").metrics["skipped_columns"] == {"ids": "more than 50 categories"}


def test_isolation_forest_is_reported(reference: pd.DataFrame, poisoned: pd.DataFrame) -> None:
    config = PoisoningConfig(
        label_column=LABEL, exclude_columns=CONFIG.exclude_columns, isolation_forest=True
    )
    outliers = screen_dataset(poisoned, reference, config).get("outliers")
    assert 0.0 < outliers.metrics["isolation_forest_rate"] < 1.0


def test_config_is_validated_and_read_from_policy() -> None:
    with pytest.raises(ValueError, match="warn_only: unknown screen"):
        PoisoningConfig(warn_only=("nope",))
    config = section_config(
        PoisoningConfig, {"psi_threshold": 1, "exclude_columns": ["a"]}, "p: gates.x.screens"
    )
    assert config.psi_threshold == 1.0 and config.exclude_columns == ("a",)
    with pytest.raises(PolicyError, match="gates.x.screens: ks_pvalue must be in"):
        section_config(PoisoningConfig, {"ks_pvalue": 2.0}, "p: gates.x.screens")


@pytest.mark.slow
def test_one_million_rows_twenty_columns_is_fast() -> None:
    import time

    rng = np.random.default_rng(3)
    n = 1_000_000

    def frame(shift: float) -> pd.DataFrame:
        data = {f"n{i}": rng.normal(shift, 1, n) for i in range(14)}
        data |= {f"c{i}": rng.choice(list("abcdef"), n) for i in range(5)}
        data["label"] = rng.integers(0, 2, n)
        return pd.DataFrame(data)

    ref, cur = frame(0.0), frame(0.0)
    started = time.perf_counter()
    report = screen_dataset(cur, ref, PoisoningConfig(label_column="label"))
    assert time.perf_counter() - started < 60
    assert statuses(report)["drift"] == "pass"


def test_unhashable_cells_are_a_data_error() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "tags": [["a"], ["b"], ["c"]]})
    with pytest.raises(DataError, match="screens: cannot compare the datasets"):
        screen_dataset(frame, frame)
