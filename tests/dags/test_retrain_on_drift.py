"""retrain_on_drift: its shape, and end to end through an asset event to secure_training.

``dag.test()`` runs one DAG run; it records the asset events of outlets (and queues the
consuming DAGs) but no scheduler turns them into runs. The end-to-end test therefore does
what the scheduler does: its own ``_create_dag_runs_asset_triggered`` creates the
asset-triggered ``secure_training`` run, which is then run task by task with the same
in-process runner ``dag.test()`` uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.lineage import LineageRecorder, RunKey
from mlsecops_provider.include.generator import generate

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
RETRAIN_URI = (
    "mlsecops://retrain-request/"  # as Airflow normalises Asset("mlsecops://retrain-request")
)
MODEL = "retrain-e2e-model"  # not the demo model other DAG tests count versions of


def _bag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


def _schedule_assets(dag: Any) -> set[str]:
    """URIs of the assets in a DAG's asset schedule (empty for a time-only schedule)."""
    from airflow.sdk import Asset

    def walk(condition: Any) -> Iterator[str]:
        if isinstance(condition, Asset):
            yield condition.uri
        for part in getattr(condition, "objects", ()):
            yield from walk(part)

    return set(walk(getattr(dag.timetable, "asset_condition", None)))


def test_retrain_dag_shape() -> None:
    from mlsecops_provider.sensors.drift import DriftSensor
    from mlsecops_provider.sensors.new_dataset import NewDatasetSensor

    dag = _bag().dags["retrain_on_drift"]
    assert not dag.catchup and dag.max_active_runs == 1
    new_data, drift = dag.get_task("wait_for_new_data"), dag.get_task("detect_drift")
    assert isinstance(new_data, NewDatasetSensor) and new_data.deferrable and new_data.soft_fail
    assert isinstance(drift, DriftSensor) and drift.mode == "reschedule" and drift.soft_fail
    for upstream, request in (
        (new_data, "request_retraining_on_new_data"),
        (drift, "request_retraining_on_drift"),
    ):
        task = dag.get_task(request)
        assert [o.uri for o in task.outlets] == [RETRAIN_URI]
        assert task.upstream_task_ids == {upstream.task_id}


def test_secure_training_is_scheduled_on_the_retrain_request() -> None:
    dag = _bag().dags["secure_training"]
    assert RETRAIN_URI in _schedule_assets(dag), (
        "secure_training must be scheduled on Asset('mlsecops://retrain-request') "
        "(AssetOrTimeSchedule) and ingest the triggering event's uri and sha256"
    )


def _states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def _bounded(dag: Any) -> Any:
    """Short sensor timeouts: a regression fails the test instead of waiting for 50 minutes."""
    for task in dag.tasks:
        if getattr(task, "_is_sensor", False):
            task.timeout, task.poke_interval = 60.0, 1.0
    return dag


def _events_of(run_id: str) -> list[Any]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = (
            select(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.uri == RETRAIN_URI)
        )
        events = [e for e in session.scalars(query) if e.source_run_id == run_id]
        return [{"id": e.id, "timestamp": e.timestamp, "extra": dict(e.extra)} for e in events]


def _create_asset_triggered_run(dag_id: str) -> tuple[str, list[int]]:
    """What the scheduler loop does for a DAG with queued asset events."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunType
    from sqlalchemy import select

    with create_session() as session:
        dag_model = session.scalar(select(DagModel).where(DagModel.dag_id == dag_id))
        runner = SchedulerJobRunner(job=Job(), executors=[])
        runner._create_dag_runs_asset_triggered(dag_models=[dag_model], session=session)
    with create_session() as session:
        query = select(DagRun).where(
            DagRun.dag_id == dag_id, DagRun.run_type == DagRunType.ASSET_TRIGGERED
        )
        runs = session.scalars(query.order_by(DagRun.id.desc())).all()
        assert runs, f"no asset-triggered run of {dag_id} was created"
        return runs[0].run_id, [e.id for e in runs[0].consumed_asset_events]


def _run_existing(dag: Any, run_id: str) -> Any:
    """Run a queued DAG run to the end with dag.test()'s in-process task runner."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    session = settings.Session()
    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id))
    run.state = DagRunState.RUNNING  # the scheduler starts queued runs
    session.commit()
    run.dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    while run.state == DagRunState.RUNNING:
        session.expire_all()
        schedulable, _ = run.update_state(session=session)
        for ti in schedulable:
            if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        for ti in run.get_task_instances(session=session):
            if ti.state == TaskInstanceState.SCHEDULED:
                _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
    return run


@pytest.fixture(scope="module")
def flow(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("retrain")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLSECOPS_MODEL_NAME", MODEL)
        bag = _bag()
        secure, retrain = bag.dags["secure_training"], _bounded(bag.dags["retrain_on_drift"])
        if RETRAIN_URI not in _schedule_assets(secure):
            pytest.fail("secure_training is not scheduled on mlsecops://retrain-request")
        base = write_table(generate(800, seed=101), (folder / "base.parquet").as_uri())
        champion_run = secure.test(run_conf={"source_uri": base.uri})
        new = write_table(generate(800, seed=102), (folder / "incoming" / "b.parquet").as_uri())
        prod = (folder / "production" / "p.parquet").as_uri()
        drifted = write_table(generate(800, seed=103, drift=True), prod)
        conf = {
            "incoming_prefix": (folder / "incoming").as_uri(),
            "production_uri": (folder / "production").as_uri(),
        }
        retrain_run = retrain.test(run_conf=conf)
        events = _events_of(retrain_run.run_id)
        run_id, consumed = _create_asset_triggered_run("secure_training")
        triggered = _run_existing(secure, run_id)
        yield {
            "champion_run": champion_run,
            "retrain_run": retrain_run,
            "refs": {"new_data": new, "drift": drifted},
            "events": events,
            "consumed": consumed,
            "triggered": triggered,
        }


@pytest.mark.slow
def test_retrain_run_requests_training_for_new_data_and_drift(flow: dict[str, Any]) -> None:
    assert str(flow["champion_run"].state) == "success", _states(flow["champion_run"])
    assert str(flow["retrain_run"].state) == "success", _states(flow["retrain_run"])
    assert set(_states(flow["retrain_run"]).values()) == {"success"}
    extras = {e["extra"]["reason"]: e["extra"] for e in flow["events"]}
    assert set(extras) == {"new_data", "drift"}
    for reason, ref in flow["refs"].items():
        assert (extras[reason]["uri"], extras[reason]["sha256"]) == (ref.uri, ref.sha256)
    assert {"annual_income", "region"} <= set(extras["drift"]["drifted_columns"])


@pytest.mark.slow
def test_asset_event_runs_secure_training_on_the_requested_data(flow: dict[str, Any]) -> None:
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    run = flow["triggered"]
    assert run.run_type == DagRunType.ASSET_TRIGGERED
    assert run.triggered_by == DagRunTriggeredByType.ASSET
    assert str(run.state) == "success", _states(run)
    events = {e["id"]: e for e in flow["events"]}
    consumed = [events[i] for i in flow["consumed"] if i in events]
    assert consumed, "the run consumed none of the retrain requests"
    newest = max(consumed, key=lambda e: e["timestamp"])["extra"]
    lineage = LineageRecorder(Settings.from_env())
    mlflow_run = lineage.client.get_run(lineage.run_for(RunKey("secure_training", run.run_id)))
    tags = [{t.key: t.value for t in i.tags} for i in mlflow_run.inputs.dataset_inputs]
    raw = next(t for t in tags if t["mlflow.data.context"] == "raw")
    assert raw["mlsecops.sha256"] == newest["sha256"]
