"""Drift decisions on the demo generator's batches, the champion's reference, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.errors import DigestMismatchError, LineageError, PolicyError
from mlsecops_provider.core.policy import load_policy, parse_policy
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.validation.drift import (
    DriftConfig,
    champion_training_reference,
    detect_drift,
    drift_against_champion,
)
from mlsecops_provider.include.generator import LABEL, PII_COLUMNS, TEXT_COLUMN, generate
from tests.sensors.helpers import log_training_run, register_champion, unique

NOT_FEATURES = ("customer_id", TEXT_COLUMN, *PII_COLUMNS)
CONFIG = DriftConfig().with_columns(LABEL, NOT_FEATURES)
DRIFTING = {"annual_income", "debt_to_income", "region"}  # what generate(drift=True) shifts


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate(1000, seed=7)


def test_clean_batch_does_not_drift(reference: pd.DataFrame) -> None:
    report = detect_drift(reference, generate(1000, seed=11), CONFIG)
    assert not report.drifted and report.drifted_columns == ()
    assert report.columns_screened == 10 and report.max_psi is not None and report.max_psi < 0.1


def test_drifted_batch_drifts_on_the_shifted_columns(reference: pd.DataFrame) -> None:
    report = detect_drift(
        reference, generate(1000, seed=11, drift=True), CONFIG, current_ref={"uri": "u"}
    )
    assert report.drifted and set(report.drifted_columns) == DRIFTING
    summary = report.summary()
    assert set(summary["psi"]) == DRIFTING and summary["current"] == {"uri": "u"}
    json.dumps(report.to_dict())  # the full report is JSON


def test_threshold_and_missing_columns(reference: pd.DataFrame) -> None:
    lenient = DriftConfig(CONFIG.statistics, min_drifted_columns=4)
    assert not detect_drift(reference, generate(1000, seed=11, drift=True), lenient).drifted
    report = detect_drift(reference, generate(1000, seed=11).drop(columns=["age"]), CONFIG)
    assert report.drifted and report.missing_columns == ("age",)


def test_policy_thresholds_come_from_validation_and_drift_sections() -> None:
    shipped = DriftConfig.from_policy(load_policy())
    assert shipped.min_drifted_columns >= 1
    policy = parse_policy(
        {
            "gates": {
                "data_validation": {"screens": {"psi_threshold": 0.3, "label_column": "y"}},
                "drift": {"min_drifted_columns": 2, "screens": {"psi_threshold": 0.5}},
            }
        },
        "p.yaml",
    )
    config = DriftConfig.from_policy(policy)
    assert config.min_drifted_columns == 2
    assert config.statistics.psi_threshold == 0.5 and config.statistics.label_column == "y"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"min_drifted_columns": 0}, "gates.drift: min_drifted_columns must be at least 1"),
        ({"min_drifted_column": 1}, r"gates.drift: unknown field\(s\) \['min_drifted_column'\]"),
        ({"screens": {"psi_threshold": "high"}}, "gates.drift.screens.psi_threshold"),
        ({"screens": [1]}, "gates.drift.screens: must be a mapping"),
    ],
)
def test_bad_drift_policy_names_the_field(section: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        DriftConfig.from_policy(parse_policy({"gates": {"drift": section}}, "p.yaml"))


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory, reference: pd.DataFrame) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("champion")
    settings = Settings.from_env()
    ref = write_table(reference, (folder / "training.parquet").as_uri())
    run_id = log_training_run(settings, unique("train"), reference, ref)
    name = unique("drift-model")
    version = register_champion(settings, name, run_id, folder / "model")
    return {"name": name, "version": version, "run_id": run_id, "ref": ref, "folder": folder}


def test_champion_reference_is_found_through_lineage(champion: dict[str, Any]) -> None:
    found = champion_training_reference(Settings.from_env(), champion["name"])
    assert (found.uri, found.sha256) == (champion["ref"].uri, champion["ref"].sha256)
    assert (found.version, found.mlflow_run_id) == (champion["version"], champion["run_id"])
    with pytest.raises(LineageError, match="has no 'champion' alias"):
        champion_training_reference(Settings.from_env(), unique("no-such-model"))


def test_drift_against_champion_verifies_the_reference(
    champion: dict[str, Any], tmp_path: Path
) -> None:
    settings = Settings.from_env()
    current = write_table(generate(600, seed=5, drift=True), (tmp_path / "c.parquet").as_uri())
    report = drift_against_champion(settings, champion["name"], current.uri, CONFIG)
    assert report.drifted and report.reference["sha256"] == champion["ref"].sha256
    assert report.current["sha256"] == current.sha256
    with pytest.raises(DigestMismatchError, match="expected sha256:0000"):
        drift_against_champion(
            settings, champion["name"], current.uri, CONFIG, current_sha256="0" * 64
        )


def test_cli_exit_codes_and_report(
    reference: pd.DataFrame, tmp_path: Path, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the shared ``cli`` fixture (tests/conftest.py), naming the data's columns."""
    columns = ["--label", LABEL, *(f"--exclude={c}" for c in NOT_FEATURES)]
    ref = str(tmp_path / "ref.csv")
    reference.to_csv(ref, index=False)
    clean, drifted = tmp_path / "clean.parquet", tmp_path / "drifted.parquet"
    generate(1000, seed=11).to_parquet(clean)
    generate(1000, seed=11, drift=True).to_parquet(drifted)
    assert cli(["drift", "--reference", ref, "--current", str(clean), *columns]).code == 0
    assert "NO DRIFT" in capsys.readouterr().out
    report = tmp_path / "out" / "report.json"
    argv = ["drift", "--reference", ref, "--current", str(drifted), "--report", str(report)]
    assert cli([*argv, *columns]).code == 1
    out = capsys.readouterr().out
    assert all(f"drifted: {c}" in out for c in DRIFTING)
    assert set(json.loads(report.read_text())["drifted_columns"]) == DRIFTING
    missing = str(tmp_path / "absent.csv")
    assert cli(["drift", "--reference", ref, "--current", missing]).code == 2
    assert "mlsecops drift: error:" in capsys.readouterr().err
