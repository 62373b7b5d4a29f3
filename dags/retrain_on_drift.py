"""Retraining on new data or drift: request a ``secure_training`` run through an asset.

Every hour, two independent paths:

- ``wait_for_new_data`` (deferrable): the newest dataset under ``params.incoming_prefix``
  has a digest no recent ``secure_training`` run logged (MLflow lineage);
- ``detect_drift``: the newest production batch under ``params.production_uri`` drifted
  from the champion model's training data (PSI / KS, policy thresholds).

Either path ends in a task whose outlet is the asset ``mlsecops://retrain-request``; the
event's extra carries ``{uri, sha256, reason, ...}``. ``secure_training`` is scheduled on
that asset (or its weekly cron) and ingests the event's URI, verifying its digest. Sensors
that find nothing before their timeout are skipped, not failed; errors fail (fail closed).

Requests do not pile up: Airflow queues one ``secure_training`` run per asset however many
events arrive meanwhile, and ``max_active_runs=1`` on both DAGs keeps runs apart. A request
that was not consumed is made again on the next hourly run, because its data is still not
in the lineage; data already ingested (even if a gate then rejected it) is not requested
again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, CronTriggerTimetable, Metadata, Param, task

from mlsecops_provider.core.settings import mlsecops_home
from mlsecops_provider.sensors.drift import DriftSensor
from mlsecops_provider.sensors.new_dataset import NewDatasetSensor

HOME = str(mlsecops_home())
INCOMING = f"file://{HOME}/incoming/"
PRODUCTION = f"file://{HOME}/production/"
MODEL_NAME = os.environ.get("MLSECOPS_MODEL_NAME", "mlsecops-demo")
AWS_CONN_ID = os.environ.get("MLSECOPS_AWS_CONN_ID") or None
TRAINING_DAG_ID = "secure_training"
RETRAIN_REQUEST = Asset("mlsecops://retrain-request")  # secure_training is scheduled on it
LABEL = "default"
NOT_FEATURES = (
    "customer_id",
    "full_name",
    "email",
    "phone",
    "ssn",
    "card_number",
    "iban",
    "street_address",
    "ip_address",
    "notes",
)
WAIT = timedelta(minutes=50)  # below the hourly schedule: one run at a time


@task(outlets=[RETRAIN_REQUEST])
def request_retraining(found: dict[str, Any], reason: str) -> Iterator[Metadata]:
    """Emit a retrain-request asset event whose extra says what to train on and why."""
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    extra = {
        "uri": found["uri"],
        "sha256": found["sha256"],
        "reason": reason,
        "requested_by": f"{ti.dag_id}/{ti.run_id}",
    }
    if reason == "drift":
        extra["drifted_columns"] = list(found.get("drifted_columns", []))
        extra["missing_columns"] = list(found.get("missing_columns", []))
        extra["max_psi"] = found.get("max_psi")
    yield Metadata(RETRAIN_REQUEST, extra)
    return extra


with DAG(
    dag_id="retrain_on_drift",
    description="Request secure retraining when new data arrives or production data drifts",
    schedule=CronTriggerTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["mlsecops", "retraining"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1), "owner": "mlsecops"},
    params={
        "incoming_prefix": Param(INCOMING, type="string", description="new training data"),
        "production_uri": Param(PRODUCTION, type="string", description="recent production data"),
    },
    doc_md=__doc__,
) as dag:
    new_data = NewDatasetSensor(
        task_id="wait_for_new_data",
        prefix_uri="{{ params.incoming_prefix }}",
        training_dag_id=TRAINING_DAG_ID,
        aws_conn_id=AWS_CONN_ID,
        deferrable=True,
        poke_interval=60,
        timeout=WAIT,
        soft_fail=True,
    )
    drift = DriftSensor(
        task_id="detect_drift",
        current_uri="{{ params.production_uri }}",
        model_name=MODEL_NAME,
        label_column=LABEL,
        exclude_columns=NOT_FEATURES,
        policy_path=os.environ.get("MLSECOPS_POLICY") or None,
        training_dag_id=TRAINING_DAG_ID,
        aws_conn_id=AWS_CONN_ID,
        mode="reschedule",
        poke_interval=300,
        timeout=WAIT,
        soft_fail=True,
    )
    request_retraining.override(task_id="request_retraining_on_new_data")(
        new_data.output, "new_data"
    )
    request_retraining.override(task_id="request_retraining_on_drift")(drift.output, "drift")
