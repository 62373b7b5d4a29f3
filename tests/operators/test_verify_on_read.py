"""Operators verify what they read: a dataset changed after ingest fails training at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.include.generator import generate
from tests.operators.fakes import FakeTaskInstance


def test_changed_dataset_fails_training_naming_uri_and_digests(tmp_path: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from mlsecops_provider.operators.train import SklearnTrainOperator

    path = tmp_path / "raw.parquet"
    ref = write_table(generate(200, seed=1), path.as_uri())
    tampered = write_table(generate(200, seed=2), path.as_uri())  # swapped after hashing
    operator = SklearnTrainOperator(
        task_id="train",
        dataset=ref.to_dict(),
        label_column="default",
        numeric_features=["age"],
        registered_model_name="never-registered",
    )
    with pytest.raises(AirflowFailException) as caught:
        operator.execute({"ti": FakeTaskInstance()})
    message = str(caught.value)
    assert "DigestMismatchError" in message and ref.uri in message
    assert ref.sha256 in message and tampered.sha256 in message


def test_unknown_connection_is_a_clear_error() -> None:
    from mlsecops_provider.core.errors import ConfigError
    from mlsecops_provider.operators._runtime import s3_client_factory

    assert s3_client_factory(None) is None
    with pytest.raises(ConfigError, match="Airflow connection 'no_such_conn' is not defined"):
        s3_client_factory("no_such_conn")
