"""Sharded data gates: validation and PII de-identification as mapped tasks over shards.

ingest -> split_dataset -> validate_shard (one task per shard) -> validate_data (merge) ->
deidentify_plan -> deidentify_shard (one task per shard) -> deidentify_pii (merge).

A dataset of at most ``shard_rows`` rows is one shard (the dataset itself), so small data
runs the same path with one mapped task each; bigger data fans out over the executor's
workers (CeleryExecutor or KubernetesExecutor: see docs/deployment.md). Every shard is
addressed by URI and SHA-256 and verified by the task that reads it; each merge checks that
its parts cover the input exactly once before it merges statistics (validation: one
GateResult whose subjects are the input and the suite) or concatenates the de-identified
shards into one dataset (published only when no shard has residual PII).

Trigger it with ``{"source_uri": "s3://bucket/batch.parquet", "shard_rows": 250000}``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from mlsecops_provider.core.settings import mlsecops_home
from mlsecops_provider.operators.ingest import DatasetIngestOperator
from mlsecops_provider.operators.pii_merge import PIIMergeOperator
from mlsecops_provider.operators.pii_plan import PIIPlanOperator
from mlsecops_provider.operators.pii_shard import PIIDeidentifyShardOperator
from mlsecops_provider.operators.shards import DatasetShardOperator
from mlsecops_provider.operators.validation_merge import DataValidationMergeOperator
from mlsecops_provider.operators.validation_shard import DataValidationShardOperator

HOME = str(mlsecops_home())
DEFAULT_SOURCE = f"file://{HOME}/incoming/credit_batch_001.parquet"
DEFAULT_SHARD_ROWS = 250_000
AWS_CONN_ID = os.environ.get("MLSECOPS_AWS_CONN_ID") or None
POLICY_PATH = os.environ.get("MLSECOPS_POLICY") or None
LABEL = "default"
NOT_FEATURES = ("customer_id", "full_name", "email", "phone", "ssn", "card_number", "iban",
                "street_address", "ip_address", "notes")  # fmt: skip


def kept_shard(part: dict) -> dict:
    """The shard a validation task passes on (its kept rows when it quarantined)."""
    return part["kept"]


with DAG(
    dag_id="sharded_data_gates",
    description="Validate and de-identify a big dataset in shards, merged into one verdict",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=2,
    tags=["mlsecops", "data", "scale-out"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=5), "owner": "mlsecops"},
    params={
        "source_uri": Param(DEFAULT_SOURCE, type="string", description="dataset URI"),
        "shard_rows": Param(
            DEFAULT_SHARD_ROWS,
            type="integer",
            minimum=1,
            description="rows per shard; smaller data is one shard",
        ),
    },  # fmt: skip
    doc_md=__doc__,
) as dag:
    ingest = DatasetIngestOperator(
        task_id="ingest",
        source_uri="{{ params.source_uri }}",
        dataset_name="raw",
        label_column=LABEL,
        aws_conn_id=AWS_CONN_ID,
    )
    split = DatasetShardOperator(
        task_id="split_dataset",
        dataset=ingest.output,
        shard_rows="{{ params.shard_rows }}",
        dataset_name="raw",
        policy_path=POLICY_PATH,
        aws_conn_id=AWS_CONN_ID,
    )
    checked = DataValidationShardOperator.partial(
        task_id="validate_shard",
        label_column=LABEL,
        exclude_columns=NOT_FEATURES,
        policy_path=POLICY_PATH,
        aws_conn_id=AWS_CONN_ID,
    ).expand(shard=split.output)
    validate = DataValidationMergeOperator(
        task_id="validate_data",
        parts=checked.output,
        label_column=LABEL,
        exclude_columns=NOT_FEATURES,
        policy_path=POLICY_PATH,
        aws_conn_id=AWS_CONN_ID,
    )
    plan = PIIPlanOperator(
        task_id="deidentify_plan",
        shards=validate.output["shards"],
        label_column=LABEL,
        policy_path=POLICY_PATH,
        aws_conn_id=AWS_CONN_ID,
    )
    deidentified = PIIDeidentifyShardOperator.partial(
        task_id="deidentify_shard",
        plan=plan.output,
        label_column=LABEL,
        policy_path=POLICY_PATH,
        aws_conn_id=AWS_CONN_ID,
    ).expand(shard=checked.output.map(kept_shard))  # Airflow maps only over return values
    deidentify = PIIMergeOperator(
        task_id="deidentify_pii",
        parts=deidentified.output,
        plan=plan.output,
        label_column=LABEL,
        policy_path=POLICY_PATH,
        aws_conn_id=AWS_CONN_ID,
    )
    validate >> deidentified  # de-identify only what the merged validation let through
