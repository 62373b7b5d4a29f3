"""The production deployment of the test: PostgreSQL, moto S3, MLflow server, Airflow.

:func:`start_deployment` starts every server on 127.0.0.1, uploads a generated dataset to
S3, triggers ``secure_training`` through the REST API and waits for the run to finish.
The configuration it gives the servers is the one ``docs/deployment.md`` describes.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.production.cluster import (
    PROJECT_ROOT,
    Airflow,
    airflow_environment,
    aws_connection,
    clean_environment,
    start_airflow,
)
from tests.production.servers import (
    Processes,
    free_port,
    http_status,
    start_mlflow,
    start_moto,
    start_postgres,
)

DAG_ID = "secure_training"
CONN_ID = "mlsecops_s3"
SIGNING_CONN_ID = "mlsecops_signing"
KEY, SECRET = "mlsecops-test-key", "mlsecops-test-secret"
RUN_TIMEOUT = 300.0


@dataclass
class Deployment:
    """What the tests need to inspect the finished run."""

    airflow: Airflow
    s3: Any
    bucket: str
    mlflow_url: str
    run_id: str
    state: str
    source_uri: str
    source_sha256: str
    public_key_pem: str

    def report(self) -> str:
        return self.airflow.run_report(DAG_ID, self.run_id)


def _s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )


def _settings(
    bucket: str, endpoint: str, mlflow_url: str, signing: tuple[str, Path]
) -> dict[str, str]:
    """The MLSecOps part of the deployment's configuration: S3 only, through a connection;
    the promotion key from a connection (a secrets backend in production)."""
    private_pem, policy = signing
    return {
        f"AIRFLOW_CONN_{CONN_ID.upper()}": aws_connection(endpoint, KEY, SECRET),
        "MLSECOPS_AWS_CONN_ID": CONN_ID,
        "MLSECOPS_EVIDENCE_URI": f"s3://{bucket}/evidence",
        "MLSECOPS_ARTIFACT_URI": f"s3://{bucket}/artifacts",
        "MLSECOPS_S3_SSE": "AES256",
        "MLFLOW_TRACKING_URI": mlflow_url,
        "MLSECOPS_ADVISORY_DB": str(PROJECT_ROOT / "tests" / "fixtures" / "advisories"),
        f"AIRFLOW_CONN_{SIGNING_CONN_ID.upper()}": json.dumps(
            {"conn_type": "generic", "password": private_pem}
        ),
        "MLSECOPS_SIGNING_CONN_ID": SIGNING_CONN_ID,
        "MLSECOPS_POLICY": str(policy),
    }


def _signing_setup(folder: Path) -> tuple[str, str, Path]:
    """A fresh P-256 key pair and a policy that pins the public key as PEM text.

    The policy file stands for configuration shipped with the image (or a mounted
    ConfigMap): it names no file under any ``MLSECOPS_HOME``.
    """
    import yaml
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    policy = yaml.safe_load((PROJECT_ROOT / "include" / "policies" / "default.yaml").read_text())
    policy["signing"] = {**(policy.get("signing") or {}), "public_keys": [public_pem]}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return private_pem, public_pem, path


def _mlflow_environment(endpoint: str) -> dict[str, str]:
    """The tracking server alone holds S3 credentials for the model artifacts."""
    return {
        **clean_environment(),
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "MLFLOW_S3_UPLOAD_EXTRA_ARGS": '{"ServerSideEncryption": "AES256"}',
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _upload_source(s3: Any, bucket: str) -> tuple[str, str]:
    from mlsecops_provider.core.data.datasets import write_table
    from mlsecops_provider.include.generator import generate

    uri = f"s3://{bucket}/incoming/credit_batch_001.parquet"
    ref = write_table(generate(800, seed=7), uri, s3_client_factory=lambda: s3)
    return ref.uri, ref.sha256


def start_deployment(procs: Processes, work: Path) -> Deployment:
    postgres = start_postgres(procs)
    postgres.createdb("airflow")
    postgres.createdb("mlflow")
    endpoint = start_moto(procs, clean_environment())
    s3 = _s3_client(endpoint)
    bucket = f"mlsecops-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket)
    mlflow_url, _ = start_mlflow(
        procs, _mlflow_environment(endpoint), postgres.url("mlflow"), f"s3://{bucket}/mlflow"
    )
    private_pem, public_pem, policy = _signing_setup(work / "config")
    env = airflow_environment(
        work=work,
        database_url=postgres.url("airflow"),
        api_port=free_port(),
        settings=_settings(bucket, endpoint, mlflow_url, (private_pem, policy)),
    )
    airflow = start_airflow(procs, work, env)  # migrates while MLflow starts
    procs.wait_for("the MLflow server", lambda: http_status(f"{mlflow_url}/health") == 200, 120)
    source_uri, source_sha256 = _upload_source(s3, bucket)
    airflow.wait_for_dag(DAG_ID, timeout=120, dag_file=f"{DAG_ID}.py")
    airflow.unpause(DAG_ID)
    run_id = airflow.trigger(DAG_ID, {"source_uri": source_uri})
    state = airflow.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
    return Deployment(
        airflow, s3, bucket, mlflow_url, run_id, state, source_uri, source_sha256, public_pem
    )
