"""DriftSensor against a champion found through real MLflow lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.errors import LineageError
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.include.generator import LABEL, PII_COLUMNS, TEXT_COLUMN, generate
from mlsecops_provider.sensors.drift import DriftSensor
from tests.sensors.helpers import log_training_run, register_champion, unique

NOT_FEATURES = ("customer_id", TEXT_COLUMN, *PII_COLUMNS)


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("champion")
    settings = Settings.from_env()
    frame = generate(1000, seed=7)
    ref = write_table(frame, (folder / "validated.parquet").as_uri())
    experiment = unique("training")
    run_id = log_training_run(settings, experiment, frame, ref)
    name = unique("drift-sensor-model")
    register_champion(settings, name, run_id, folder / "model")
    return {"name": name, "experiment": experiment, "ref": ref}


def _sensor(current: str, champion: dict[str, Any], **kwargs: Any) -> DriftSensor:
    return DriftSensor(
        task_id=unique("drift"),
        current_uri=current,
        model_name=champion["name"],
        label_column=LABEL,
        exclude_columns=NOT_FEATURES,
        training_dag_id=champion["experiment"],
        **kwargs,
    )


def test_fires_on_the_drifted_batch_and_names_the_columns(
    champion: dict[str, Any], tmp_path: Path
) -> None:
    write_table(generate(800, seed=11), (tmp_path / "day1.parquet").as_uri())
    sensor = _sensor(tmp_path.as_uri(), champion)
    assert sensor.poke({}) is False  # newest batch is clean
    drifted = write_table(
        generate(800, seed=12, drift=True), (tmp_path / "day2.csv").as_uri(), "csv"
    )
    fired = sensor.poke({})
    assert fired
    value = fired.xcom_value  # type: ignore[union-attr]
    assert (value["uri"], value["sha256"], value["reason"]) == (
        drifted.uri,
        drifted.sha256,
        "drift",
    )
    assert set(value["drifted_columns"]) == {"annual_income", "debt_to_income", "region"}
    assert value["reference"]["sha256"] == champion["ref"].sha256
    assert value["max_psi"] > 0.2 and set(value["psi"]) == set(value["drifted_columns"])


def test_does_not_fire_on_a_clean_batch(champion: dict[str, Any], tmp_path: Path) -> None:
    clean = write_table(generate(800, seed=13), (tmp_path / "clean.parquet").as_uri())
    assert _sensor(clean.uri, champion).poke({}) is False
    assert _sensor((tmp_path / "empty").as_uri(), champion).poke({}) is False


def test_data_already_trained_on_does_not_fire_again(
    champion: dict[str, Any], tmp_path: Path
) -> None:
    frame = generate(800, seed=14, drift=True)
    drifted = write_table(frame, (tmp_path / "drifted.parquet").as_uri())
    sensor = _sensor(drifted.uri, champion)
    assert sensor.poke({})
    log_training_run(Settings.from_env(), champion["experiment"], frame, drifted, context="raw")
    assert sensor.poke({}) is False


def test_policy_threshold_decides(champion: dict[str, Any], tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\ngates:\n  drift:\n    min_drifted_columns: 4\n")
    drifted = write_table(generate(800, seed=15, drift=True), (tmp_path / "d.parquet").as_uri())
    assert _sensor(drifted.uri, champion, policy_path=str(policy)).poke({}) is False


def test_no_champion_fails_closed(champion: dict[str, Any], tmp_path: Path) -> None:
    current = write_table(generate(100, seed=16), (tmp_path / "c.parquet").as_uri())
    sensor = _sensor(current.uri, {**champion, "name": unique("no-model")})
    with pytest.raises(LineageError, match="has no 'champion' alias"):
        sensor.poke({})


def test_fires_on_drifted_data_in_s3(champion: dict[str, Any], s3_bucket: str) -> None:
    write_table(generate(800, seed=17, drift=True), f"s3://{s3_bucket}/prod/batch.parquet")
    fired = _sensor(f"s3://{s3_bucket}/prod/", champion).poke({})
    assert fired and fired.xcom_value["uri"] == f"s3://{s3_bucket}/prod/batch.parquet"  # type: ignore[union-attr]
