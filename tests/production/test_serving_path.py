"""Serving on the production path: ``mlsecops serve`` loads the champion that
``secure_training`` promoted on the MLflow server (artifacts proxied from S3, evidence and
training data in S3), mirrors it as its own shadow, answers traffic, and writes the
prediction log to S3; the warm-up gate reads it back; a champion that stops verifying
refuses to start. Starts its own deployment (PostgreSQL, moto S3, MLflow server, Airflow)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.production.deployment import KEY, SECRET, Deployment
from tests.production.servers import free_port

pytestmark = pytest.mark.slow
MODEL_NAME = "mlsecops-demo"


def _consumer_env(deployment: Deployment, tmp_path: Path) -> dict[str, str]:
    """A serving job: S3 through boto3's defaults, the registry on the tracking server."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLSECOPS_"))}
    return {
        **keep,
        "MLFLOW_TRACKING_URI": deployment.mlflow_url,
        "MLSECOPS_HOME": str(tmp_path / "home"),
        "MLSECOPS_EVIDENCE_URI": f"s3://{deployment.bucket}/evidence",
        "MLSECOPS_ARTIFACT_URI": f"s3://{deployment.bucket}/artifacts",
        "AWS_ENDPOINT_URL": str(deployment.s3.meta.endpoint_url),
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "SERVE_TOKEN": "prod-t0ken",
    }


def _training_rows(deployment: Deployment, client: Any, version: str, count: int) -> list[Any]:
    """Rows of the champion's own training data (in S3, read by digest): in profile."""
    from mlsecops_provider.core.data.datasets import read_table
    from mlsecops_provider.core.tracking.datasets import dataset_inputs

    run = client.get_run(client.get_model_version(MODEL_NAME, version).run_id)
    training = [t for t in dataset_inputs(run) if t.get("mlflow.data.context") == "training"]
    frame, _ = read_table(
        training[0]["mlsecops.uri"], training[0]["mlsecops.sha256"], lambda: deployment.s3
    )
    return [frame.iloc[i : i + 2] for i in range(0, 2 * count, 2)]


def _model_columns(deployment: Deployment, version: str) -> list[str]:
    import mlflow

    # both: an earlier module may have pinned the registry URI to the session's own store
    mlflow.set_tracking_uri(deployment.mlflow_url)
    mlflow.set_registry_uri(deployment.mlflow_url)
    info = mlflow.models.get_model_info(f"models:/{MODEL_NAME}/{version}")
    return [str(n) for n in info.signature.inputs.input_names()]


def _serve(
    env: dict[str, str], key: Path, log_uri: str, port: int, logs: Path
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "mlsecops_provider.core.cli.main", "serve",
        "--registered-model", MODEL_NAME, "--public-key", str(key), "--port", str(port),
        "--log", log_uri, "--token-env", "SERVE_TOKEN",
    ]  # fmt: skip
    with logs.open("wb") as out:  # a file, not a pipe: a full pipe would block the server
        return subprocess.Popen(command, env=env, stdout=out, stderr=out)


def _wait_healthy(server: subprocess.Popen[bytes], url: str, logs: Path) -> None:
    import requests

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlsecops serve exited: {logs.read_text()[-2000:]}")
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    pytest.fail("mlsecops serve did not become healthy")


def test_serve_the_promoted_champion_with_the_shadow_mirrored(
    deployment: Deployment, tmp_path: Path
) -> None:
    import requests
    from mlflow import MlflowClient

    from mlsecops_provider.core.serving.prediction_log import read_prediction_log
    from mlsecops_provider.core.serving.warmup import WarmupConfig, warmup_gate

    client = MlflowClient(deployment.mlflow_url, deployment.mlflow_url)
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    if not any(t.startswith("mlsecops.promotion.") for t in champion.tags):
        pytest.skip("the run did not promote through the signed gate")
    client.set_registered_model_alias(MODEL_NAME, "shadow", champion.version)
    key = tmp_path / "promotion.pub.pem"
    key.write_text(deployment.public_key_pem)
    env = _consumer_env(deployment, tmp_path)
    log_uri = f"s3://{deployment.bucket}/serving/predictions"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    batches = _training_rows(deployment, client, champion.version, 20)
    logs = tmp_path / "serve.log"
    server = _serve(env, key, log_uri, port, logs)
    try:
        _wait_healthy(server, url, logs)
        health = requests.get(f"{url}/health", timeout=5).json()
        assert health["models"]["champion"]["version"] == champion.version
        assert health["models"]["shadow"]["version"] == champion.version
        columns = _model_columns(deployment, champion.version)
        auth = {"Authorization": "Bearer prod-t0ken"}
        for i, batch in enumerate(batches):
            payload = {"dataframe_split": batch[columns].to_dict(orient="split")}
            payload["dataframe_split"].pop("index", None)
            answer = requests.post(
                f"{url}/invocations", json=payload, headers={**auth, "X-Request-Id": f"p{i}"},
                timeout=30,
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            assert answer.headers["X-Model-Version"] == champion.version
        assert requests.post(f"{url}/invocations", json=payload, timeout=5).status_code == 401
        metrics = requests.get(f"{url}/metrics", timeout=5).text
        assert 'mlsecops_serving_requests_total{status="200"} 20.0' in metrics
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=120)
    frame = read_prediction_log(log_uri, lambda: deployment.s3)
    assert frame["request_id"].nunique() == 20
    result = warmup_gate(log_uri, WarmupConfig(min_requests=10), s3=lambda: deployment.s3)
    assert result.metrics["agreement"] == 1.0, result.message  # the shadow is the champion


def test_a_champion_that_no_longer_verifies_refuses_to_start(
    deployment: Deployment, tmp_path: Path
) -> None:
    from mlsecops_provider.core.promotion.signing import SigningKey

    key = tmp_path / "other.pub.pem"
    key.write_bytes(SigningKey.generate().public_key.pem)  # not the key that signed
    env = _consumer_env(deployment, tmp_path)
    logs = tmp_path / "serve.log"
    server = _serve(env, key, f"s3://{deployment.bucket}/serving/refused", free_port(), logs)
    code = server.wait(timeout=180)
    last = logs.read_text().strip().splitlines()[-1]
    assert code == 2, logs.read_text()
    assert last.startswith("mlsecops serve: error:") and "does not verify" in last, last
    assert "Traceback" not in logs.read_text()
