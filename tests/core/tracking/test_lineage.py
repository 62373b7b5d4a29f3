"""Lineage in a real MLflow store: one run per DAG run, datasets with digests, gate verdicts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.errors import LineageError
from mlsecops_provider.core.evidence import GateResult
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.lineage import (
    LineageRecorder,
    RunKey,
    check_tracking_reachable,
)
from mlsecops_provider.include.generator import generate


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> LineageRecorder:
    home = tmp_path_factory.mktemp("lineage")
    return LineageRecorder(Settings.from_env({"MLSECOPS_HOME": str(home)}))


def test_one_mlflow_run_per_dag_run(recorder: LineageRecorder) -> None:
    first = recorder.run_for(RunKey("dag_a", "manual__1", 1))
    assert recorder.run_for(RunKey("dag_a", "manual__1", 2)) == first
    assert recorder.run_for(RunKey("dag_a", "manual__2")) != first
    run = recorder.client.get_run(first)
    assert run.data.tags["mlsecops.try_number"] == "2"
    experiment = recorder.client.get_experiment(run.info.experiment_id)
    assert experiment.name == "dag_a"
    assert experiment.artifact_location.startswith(f"file://{recorder.settings.home}")


def test_dataset_logged_with_full_digest(recorder: LineageRecorder, tmp_path: Path) -> None:
    frame = generate(40)
    ref = write_table(frame, (tmp_path / "d.parquet").as_uri())
    run_id = recorder.run_for(RunKey("dag_b", "r1"))
    recorder.log_dataset(run_id, frame, ref, name="raw", context="training", targets="default")
    inputs = recorder.client.get_run(run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    tags = {t.key: t.value for t in inputs[0].tags}
    assert tags["mlsecops.sha256"] == ref.sha256
    assert tags["mlflow.data.context"] == "training"
    assert inputs[0].dataset.digest == ref.sha256[:32]
    assert inputs[0].dataset.name == "raw"


def test_gate_verdict_and_metrics(recorder: LineageRecorder) -> None:
    run_id = recorder.run_for(RunKey("dag_c", "r1"))
    result = GateResult(
        gate="model_scan",
        verdict="fail",
        metrics={"findings": 3, "flag": True, "name": "x"},
        evidence_uri="file:///tmp/e/report.json",
        evidence_sha256="ab" * 32,
    )
    recorder.log_gate(run_id, result)
    data = recorder.client.get_run(run_id).data
    assert data.tags["mlsecops.gate.model_scan"] == "fail"
    assert data.tags["mlsecops.gate.model_scan.evidence_sha256"] == "ab" * 32
    assert data.metrics == {"model_scan.findings": 3.0}


def test_unreachable_tracking_server_fails_fast_naming_it() -> None:
    started = time.monotonic()
    with pytest.raises(LineageError, match=r"http://127.0.0.1:9 is unreachable"):
        check_tracking_reachable("http://127.0.0.1:9", timeout=2)
    assert time.monotonic() - started < 10
    settings = Settings.from_env(
        {"MLSECOPS_HOME": "/tmp", "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    )
    with pytest.raises(LineageError, match="unreachable"):
        LineageRecorder(settings).run_for(RunKey("d", "r"))


class _LosesFirstInsert:
    """The real client, whose first ``log_inputs`` fails as a lost unique-key race does."""

    def __init__(self, client: object) -> None:
        self._client = client
        self.failures = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)

    def log_inputs(self, *args: object, **kwargs: object) -> None:
        if not self.failures:
            self.failures += 1
            raise RuntimeError("UNIQUE constraint failed: datasets.experiment_id, name, digest")
        self._client.log_inputs(*args, **kwargs)


def test_a_dataset_insert_lost_to_a_race_is_retried(tmp_path: Path) -> None:
    recorder = LineageRecorder(Settings.from_env({"MLSECOPS_HOME": str(tmp_path)}))
    frame = generate(20)
    ref = write_table(frame, (tmp_path / "d.parquet").as_uri())
    run_id = recorder.run_for(RunKey("dag_race", "r1"))
    flaky = _LosesFirstInsert(recorder.client)
    recorder._client = flaky  # type: ignore[assignment]  # the recorder's client, for this test
    recorder.log_dataset(run_id, frame, ref, name="raw", context="raw")
    assert flaky.failures == 1
    (logged,) = recorder.client.get_run(run_id).inputs.dataset_inputs
    assert {t.key: t.value for t in logged.tags}["mlsecops.sha256"] == ref.sha256
