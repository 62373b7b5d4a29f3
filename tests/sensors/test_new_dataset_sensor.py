"""NewDatasetSensor in poke and deferrable mode, on a folder and on the moto S3 server."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException, TaskDeferred

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.errors import StorageError
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import sha256_bytes
from mlsecops_provider.include.generator import generate
from mlsecops_provider.sensors.new_dataset import NewDatasetSensor
from mlsecops_provider.sensors.triggers.new_dataset import NewDatasetTrigger
from tests.sensors.helpers import log_training_run, unique


def _sensor(prefix: str, experiment: str, **kwargs: object) -> NewDatasetSensor:
    return NewDatasetSensor(
        task_id=unique("wait"), prefix_uri=prefix, training_dag_id=experiment, **kwargs
    )


def test_fires_on_a_new_file_and_not_once_it_is_trained_on(tmp_path: Path) -> None:
    experiment = unique("training")
    sensor = _sensor(str(tmp_path), experiment)  # a plain path is a file:// prefix
    assert not sensor.poke({})
    frame = generate(40, seed=1)
    ref = write_table(frame, (tmp_path / "batch_001.parquet").as_uri())
    fired = sensor.poke({})
    assert fired and fired.xcom_value == {"uri": ref.uri, "sha256": ref.sha256}
    log_training_run(Settings.from_env(), experiment, frame, ref, context="raw")
    assert not sensor.poke({})  # unchanged: trained on
    changed = write_table(generate(40, seed=2), ref.uri)  # same object, other bytes
    fired = sensor.poke({})
    assert fired and fired.xcom_value == {"uri": ref.uri, "sha256": changed.sha256}


def test_fires_on_a_new_s3_object_and_not_on_an_unchanged_one(s3_bucket: str) -> None:
    experiment = unique("training")
    frame = generate(40, seed=1)
    first = write_table(frame, f"s3://{s3_bucket}/incoming/b1.parquet")
    sensor = _sensor(f"s3://{s3_bucket}/incoming/", experiment)
    fired = sensor.poke({})
    assert fired and fired.xcom_value == {"uri": first.uri, "sha256": first.sha256}
    log_training_run(Settings.from_env(), experiment, frame, first, context="raw")
    assert not sensor.poke({})  # unchanged: trained on
    boto3.client("s3").put_object(Bucket=s3_bucket, Key="incoming/b2.csv", Body=b"a\n2\n")
    fired = sensor.poke({})
    assert fired and fired.xcom_value == {
        "uri": f"s3://{s3_bucket}/incoming/b2.csv",
        "sha256": sha256_bytes(b"a\n2\n"),
    }


def test_timeout_skips_with_soft_fail_and_fails_without(tmp_path: Path) -> None:
    experiment = unique("training")
    with pytest.raises(AirflowSkipException):
        _sensor(tmp_path.as_uri(), experiment, timeout=0, soft_fail=True).execute({})
    with pytest.raises(AirflowSensorTimeout):
        _sensor(tmp_path.as_uri(), experiment, timeout=0).execute({})


def test_deferrable_defers_with_a_trigger_that_knows_the_lineage(tmp_path: Path) -> None:
    experiment = unique("training")
    frame = generate(40, seed=3)
    ref = write_table(frame, (tmp_path / "seen" / "b.parquet").as_uri())
    log_training_run(Settings.from_env(), experiment, frame, ref, context="raw")
    sensor = _sensor(tmp_path.as_uri(), experiment, deferrable=True, poke_interval=5, timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, NewDatasetTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout is not None and deferred.value.timeout.total_seconds() == 60
    _, kwargs = trigger.serialize()
    assert kwargs["known_sha256"] == [ref.sha256] and kwargs["poke_interval"] == 5.0
    assert kwargs["prefix_uri"] == tmp_path.as_uri()


def test_deferrable_returns_at_once_and_rechecks_lineage_on_resume(tmp_path: Path) -> None:
    experiment = unique("training")
    frame = generate(40, seed=4)
    ref = write_table(frame, (tmp_path / "b.parquet").as_uri())
    sensor = _sensor(tmp_path.as_uri(), experiment, deferrable=True)
    assert sensor.execute({}) == {"uri": ref.uri, "sha256": ref.sha256}
    event = {"status": "success", "uri": ref.uri, "sha256": ref.sha256, "etag": "e"}
    assert sensor.execute_complete({}, event) == {"uri": ref.uri, "sha256": ref.sha256}
    log_training_run(Settings.from_env(), experiment, frame, ref, context="raw")
    with pytest.raises(TaskDeferred):  # trained on meanwhile: wait again
        sensor.execute_complete({}, event)
    with pytest.raises(StorageError, match="NotFoundError: gone"):
        sensor.execute_complete({}, {"status": "error", "message": "NotFoundError: gone"})
