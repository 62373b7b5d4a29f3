"""The production path end to end: Airflow on PostgreSQL (LocalExecutor), S3, MLflow server.

``secure_training`` is triggered through the REST API on a dataset in S3; evidence and
dataset copies go to ``s3://`` with server-side encryption, through an Airflow AWS connection;
the model goes to an MLflow tracking server with a SQL backend and S3 artifacts. Every
Airflow component has its own ``MLSECOPS_HOME`` and ``AIRFLOW_HOME``: nothing is shared on
local disk. See ``deployment.py`` for the servers and ``docs/deployment.md`` for the deployment.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.production.deployment import DAG_ID, Deployment

pytestmark = pytest.mark.slow
MODEL_NAME = "mlsecops-demo"
PROMOTION_TAGS = "mlsecops.promotion."


def _s3_get(deployment: Deployment, uri: str) -> tuple[bytes, dict[str, Any]]:
    parsed = urlparse(uri)
    assert parsed.scheme == "s3" and parsed.netloc == deployment.bucket, uri
    key = parsed.path.lstrip("/")
    body = deployment.s3.get_object(Bucket=parsed.netloc, Key=key)["Body"].read()
    return body, deployment.s3.head_object(Bucket=parsed.netloc, Key=key)


def _keys(deployment: Deployment, prefix: str) -> list[str]:
    paginator = deployment.s3.get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=deployment.bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _gate_summaries(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """Each gate's summary: the ``mlsecops_gate`` XCom every gate task pushes."""
    tasks = deployment.airflow.task_states(DAG_ID, deployment.run_id)
    summaries = [
        deployment.airflow.xcom(DAG_ID, deployment.run_id, t, "mlsecops_gate") for t in tasks
    ]
    return {v["gate"]: v for v in summaries if isinstance(v, dict) and v.get("evidence_uri")}


def _client(deployment: Deployment) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=deployment.mlflow_url, registry_uri=deployment.mlflow_url)


def _mlflow_runs(deployment: Deployment) -> list[Any]:
    """The MLflow runs tagged with this DAG run (there must be exactly one)."""
    client = _client(deployment)
    experiment = client.get_experiment_by_name(DAG_ID)
    assert experiment is not None, f"no MLflow experiment {DAG_ID!r} on the server"
    query = (
        f"tags.`mlsecops.dag_id` = '{DAG_ID}' and tags.`mlsecops.run_id` = '{deployment.run_id}'"
    )
    runs = client.search_runs([experiment.experiment_id], query)
    assert runs, f"no MLflow run for {deployment.run_id}"
    return list(runs)


def _run_tags(deployment: Deployment) -> dict[str, str]:
    return {k: v for run in _mlflow_runs(deployment) for k, v in run.data.tags.items()}


def _consumer(deployment: Deployment, home: Path) -> Any:
    """Settings of a consumer of the registry (a serving job), pointed at this deployment."""
    from mlsecops_provider.core.settings import Settings

    return Settings(
        home=home,
        tracking_uri=deployment.mlflow_url,
        registry_uri=deployment.mlflow_url,
        evidence_uri=f"s3://{deployment.bucket}/evidence",
        artifact_uri=f"s3://{deployment.bucket}/artifacts",
    )


def test_postgresql_server_is_installed() -> None:
    """Fails (never skips) without Debian's PostgreSQL: ``make test`` installs it."""
    from tests.production.servers import ServerError, find_pg_bin

    try:
        pg_bin = find_pg_bin()
    except ServerError as err:
        pytest.fail(str(err))
    assert (pg_bin / "initdb").is_file()


def test_run_triggered_through_the_api_succeeds(deployment: Deployment) -> None:
    states = deployment.airflow.task_states(DAG_ID, deployment.run_id)
    assert deployment.state == "success", states
    assert states and set(states.values()) == {"success"}, states


def test_each_gate_report_in_s3_matches_its_digest_and_is_encrypted(
    deployment: Deployment,
) -> None:
    from mlsecops_provider.core.policy import load_policy

    gates = _gate_summaries(deployment)
    assert set(load_policy().required_gates) <= set(gates), sorted(gates)
    tags = _run_tags(deployment)
    for gate, summary in gates.items():
        body, head = _s3_get(deployment, summary["evidence_uri"])
        assert summary["evidence_uri"].endswith(f"/{gate}/report.json")
        assert hashlib.sha256(body).hexdigest() == summary["evidence_sha256"], gate
        assert head.get("ServerSideEncryption") == "AES256", (gate, head)
        assert tags[f"mlsecops.gate.{gate}.evidence_sha256"] == summary["evidence_sha256"]
        assert tags[f"mlsecops.gate.{gate}"] == summary["verdict"]
        assert json.loads(body)["result"]["verdict"] == summary["verdict"], gate


def test_every_object_the_run_wrote_is_encrypted(deployment: Deployment) -> None:
    prefixes = [f"evidence/{DAG_ID}/", f"artifacts/{DAG_ID}/", "mlflow/"]
    for prefix in prefixes:
        keys = _keys(deployment, prefix)
        assert keys, f"nothing under s3://{deployment.bucket}/{prefix}"
        for key in keys:
            head = deployment.s3.head_object(Bucket=deployment.bucket, Key=key)
            assert head.get("ServerSideEncryption") == "AES256", key


def test_mlflow_run_on_the_server_carries_the_datasets_with_digests(
    deployment: Deployment,
) -> None:
    inputs = {}
    for run in _mlflow_runs(deployment):
        assert run.data.tags["mlsecops.dag_id"] == DAG_ID
        assert run.data.tags["mlsecops.run_id"] == deployment.run_id
        for dataset_input in run.inputs.dataset_inputs:
            tags = {t.key: t.value for t in dataset_input.tags}
            inputs[tags["mlflow.data.context"]] = (dataset_input.dataset, tags)
    assert {"raw", "training"} <= set(inputs), sorted(inputs)
    raw, raw_tags = inputs["raw"]
    assert raw_tags["mlsecops.sha256"] == deployment.source_sha256  # ingest copies the bytes
    assert raw.digest == deployment.source_sha256[: len(raw.digest)]
    deidentified = deployment.airflow.xcom(DAG_ID, deployment.run_id, "deidentify_pii", "dataset")
    assert inputs["training"][1]["mlsecops.sha256"] == deidentified["sha256"]  # no raw PII
    assert deidentified["uri"].startswith(f"s3://{deployment.bucket}/artifacts/")
    body, _ = _s3_get(deployment, deidentified["uri"])
    assert hashlib.sha256(body).hexdigest() == deidentified["sha256"]


def test_one_mlflow_run_per_dag_run(deployment: Deployment) -> None:
    runs = _mlflow_runs(deployment)
    assert len(runs) == 1, [(r.info.run_id, sorted(r.data.tags)) for r in runs]


def test_champion_alias_points_at_the_hashed_model(deployment: Deployment, tmp_path: Path) -> None:
    from mlsecops_provider.core.hashing import model_signing_root_digest
    from mlsecops_provider.core.tracking.registry import download_model

    client = _client(deployment)
    versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    ours = [v for v in versions if v.tags.get("mlsecops.run_id") == deployment.run_id]
    assert len(ours) == 1, [(v.version, v.tags) for v in versions]
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert champion.version == ours[0].version  # the first run on a fresh server
    provenance = _gate_summaries(deployment)["provenance"]
    assert champion.tags["mlsecops.model_sha256"] == provenance["subjects"]["model"]
    # the version's artifacts, from the tracking server (stored in S3)
    model_dir = download_model(_consumer(deployment, tmp_path), champion.source, str(tmp_path))
    assert model_signing_root_digest(model_dir) == champion.tags["mlsecops.model_sha256"]
    promoted = "promote" in deployment.airflow.task_states(DAG_ID, deployment.run_id)
    if promoted or any(tag.startswith(PROMOTION_TAGS) for tag in champion.tags):
        _check_signed_promotion(deployment, champion.tags)  # moved by the signed promotion gate


def _check_signed_promotion(deployment: Deployment, tags: dict[str, str]) -> None:
    """The champion's signed record: in S3, encrypted, and verified as a consumer would."""
    from mlsecops_provider.core.promotion.audit_log import default_log_uri
    from mlsecops_provider.core.promotion.record import (
        TAG_EVIDENCE_SHA256,
        TAG_EVIDENCE_URI,
        TAG_MODEL_SHA256,
    )
    from mlsecops_provider.core.promotion.verify import verify_promotion

    assert tags[TAG_MODEL_SHA256] == tags["mlsecops.model_sha256"]
    body, head = _s3_get(deployment, tags[TAG_EVIDENCE_URI])
    assert hashlib.sha256(body).hexdigest() == tags[TAG_EVIDENCE_SHA256]
    assert head.get("ServerSideEncryption") == "AES256"
    check = verify_promotion(
        MODEL_NAME,
        "champion",
        deployment.public_key_pem,
        deployment.mlflow_url,
        registry_uri=deployment.mlflow_url,
        s3_client_factory=lambda: deployment.s3,
        audit_log_uri=default_log_uri(f"s3://{deployment.bucket}/evidence"),
    )
    assert check.verified, check.to_dict()


def test_no_component_kept_anything_in_its_local_home(deployment: Deployment) -> None:
    """Every component had its own, fresh MLSECOPS_HOME; the run used none of them."""
    for component in ("api-server", "scheduler", "dag-processor"):
        home = deployment.airflow.home(component)
        assert home.is_dir()
        assert not any(home.rglob("*")), (component, sorted(home.rglob("*")))
