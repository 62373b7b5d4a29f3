"""Test stand-in for ``dags/sharded_data_gates.py``: used only while the project has none.

The Celery test copies the project's DAG into its cluster's DAGs folder and this file only
when that one is missing (``scaleout._dags_folder``). Same dag_id, params (``source_uri``,
``shard_rows``) and tasks: ingest -> split_dataset -> validate_shard (mapped) ->
validate_data (merge) -> deidentify_plan -> deidentify_shard (mapped) -> deidentify_pii
(merge). It maps over the split's shards (no quarantine), so the kept shards are the split's.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from mlsecops_provider.operators.ingest import DatasetIngestOperator
from mlsecops_provider.operators.pii_merge import PIIMergeOperator
from mlsecops_provider.operators.pii_plan import PIIPlanOperator
from mlsecops_provider.operators.pii_shard import PIIDeidentifyShardOperator
from mlsecops_provider.operators.shards import DatasetShardOperator
from mlsecops_provider.operators.validation_merge import DataValidationMergeOperator
from mlsecops_provider.operators.validation_shard import DataValidationShardOperator

AWS = os.environ.get("MLSECOPS_AWS_CONN_ID") or None
POLICY = os.environ.get("MLSECOPS_POLICY") or None
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

with DAG(
    dag_id="sharded_data_gates",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    params={"source_uri": Param("", type="string"), "shard_rows": Param(100000, type="integer")},
):
    ingest = DatasetIngestOperator(
        task_id="ingest",
        source_uri="{{ params.source_uri }}",
        dataset_name="raw",
        label_column=LABEL,
        aws_conn_id=AWS,
    )
    split = DatasetShardOperator(
        task_id="split_dataset",
        dataset=ingest.output,
        shard_rows="{{ params.shard_rows }}",
        policy_path=POLICY,
        aws_conn_id=AWS,
    )
    vshard = DataValidationShardOperator.partial(
        task_id="validate_shard",
        label_column=LABEL,
        exclude_columns=NOT_FEATURES,
        policy_path=POLICY,
        aws_conn_id=AWS,
    ).expand(shard=split.output)
    vmerge = DataValidationMergeOperator(
        task_id="validate_data",
        parts=vshard.output,
        label_column=LABEL,
        exclude_columns=NOT_FEATURES,
        policy_path=POLICY,
        aws_conn_id=AWS,
    )
    plan = PIIPlanOperator(
        task_id="deidentify_plan",
        shards=split.output,
        label_column=LABEL,
        policy_path=POLICY,
        aws_conn_id=AWS,
    )
    pshard = PIIDeidentifyShardOperator.partial(
        task_id="deidentify_shard",
        plan=plan.output,
        label_column=LABEL,
        policy_path=POLICY,
        aws_conn_id=AWS,
    ).expand(shard=split.output)
    PIIMergeOperator(
        task_id="deidentify_pii",
        parts=pshard.output,
        plan=plan.output,
        label_column=LABEL,
        policy_path=POLICY,
        aws_conn_id=AWS,
    )
    vmerge >> plan
