"""Driving DAG runs on the Celery deployment: the workload, task tries, faults' timing.

A :class:`Workload` names the DAG the module runs, its mapped shard tasks, the run
configurations (several shards, one shard, slow shards) and what of a run's result must be the
same between runs (digests and verdicts).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.production.celery.scaleout import CeleryDeployment
from tests.production.servers import ServerError

RUN_TIMEOUT = 240.0


@dataclass(frozen=True)
class Workload:
    """A DAG to run, its run configurations and what of a run's result must not change.

    ``confs`` gives (once data is in place) ``sharded`` (several shards) and ``one_shard``
    (the same data in one shard).
    ``outputs`` is what every run of that data must agree on (digests, verdicts); it reads
    every report and dataset it names back from S3 and checks its digest; ``{}`` when the
    run published nothing.
    """

    dag_id: str
    mapped: tuple[str, ...]  # the mapped shard tasks
    merge_tasks: tuple[str, ...]  # the tasks that publish a run's merged outputs
    confs: Callable[[CeleryDeployment], dict[str, dict[str, Any]]]
    outputs: Callable[[CeleryDeployment, str], dict[str, Any]]
    mlflow_runs: Callable[[CeleryDeployment, str], list[Any]] = lambda _d, _r: []

    @property
    def dag_file(self) -> str:
        return f"{self.dag_id}.py"


def _verified(deployment: CeleryDeployment, uri: str, sha256: str) -> None:
    body = deployment.s3.get_object(Bucket=deployment.bucket, Key=_key(deployment, uri))
    actual = hashlib.sha256(body["Body"].read()).hexdigest()
    assert actual == sha256.removeprefix("sha256:"), f"{uri}: {actual} != recorded {sha256}"


SHARDED_DAG = "sharded_data_gates"
SOURCE_ROWS, SHARD_ROWS = 1200, 400  # three shards (whole PII chunks of 200 rows)


def sharded_confs(deployment: CeleryDeployment) -> dict[str, dict[str, Any]]:
    """A generated credit table (names, e-mails, free text) in S3, as a batch would land."""
    from mlsecops_provider.core.data.datasets import write_table
    from mlsecops_provider.include.generator import generate

    uri = f"s3://{deployment.bucket}/incoming/celery_batch.parquet"
    write_table(generate(SOURCE_ROWS, seed=11), uri, s3_client_factory=lambda: deployment.s3)
    return {
        "sharded": {"source_uri": uri, "shard_rows": SHARD_ROWS},
        "one_shard": {"source_uri": uri, "shard_rows": 100 * SOURCE_ROWS},
    }


def sharded_outputs(deployment: CeleryDeployment, run_id: str) -> dict[str, Any]:
    """Verdicts and subjects of both merged gates, the de-identified dataset's digest."""
    out: dict[str, Any] = {}
    for task in ("validate_data", "deidentify_pii"):
        summary = deployment.airflow.xcom(SHARDED_DAG, run_id, task, "mlsecops_gate")
        if isinstance(summary, dict) and summary.get("evidence_uri"):
            _verified(deployment, summary["evidence_uri"], summary["evidence_sha256"])
            out[f"{summary['gate']}.verdict"] = summary["verdict"]
            out[f"{summary['gate']}.subjects"] = summary["subjects"]
    dataset = deployment.airflow.xcom(SHARDED_DAG, run_id, "deidentify_pii", "dataset")
    if isinstance(dataset, dict):
        _verified(deployment, dataset["uri"], dataset["sha256"])
        out["deidentified.sha256"] = dataset["sha256"]
    return out


def sharded_mlflow_runs(deployment: CeleryDeployment, run_id: str) -> list[Any]:
    """The MLflow runs on the server tagged with this DAG run, each with its dataset inputs."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=deployment.mlflow_url)
    experiment = client.get_experiment_by_name(SHARDED_DAG)
    if experiment is None:
        return []
    query = f"tags.`mlsecops.dag_id` = '{SHARDED_DAG}' and tags.`mlsecops.run_id` = '{run_id}'"
    found = client.search_runs([experiment.experiment_id], query)
    return [
        (r.info.run_id, sorted(i.dataset.digest for i in r.inputs.dataset_inputs)) for r in found
    ]


SHARDED = Workload(
    dag_id=SHARDED_DAG,
    mapped=("validate_shard", "deidentify_shard"),
    merge_tasks=("validate_data", "deidentify_pii"),
    confs=sharded_confs,
    outputs=sharded_outputs,
    mlflow_runs=sharded_mlflow_runs,
)


def _key(deployment: CeleryDeployment, uri: str) -> str:
    prefix = f"s3://{deployment.bucket}/"
    assert uri.startswith(prefix), uri
    return uri[len(prefix) :]


def task_instances(deployment: CeleryDeployment, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
    return list(deployment.airflow.get_json(path, params={"limit": 500})["task_instances"])


def tries(deployment: CeleryDeployment, dag_id: str, run_id: str, ti: dict[str, Any]) -> list[Any]:
    """Every try of one task instance (state, hostname), oldest first."""
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/{ti['map_index']}"
    found = deployment.airflow.get_json(f"{path}/tries")["task_instances"]
    return sorted(found, key=lambda t: t["try_number"])


def wait_for_task(
    deployment: CeleryDeployment, dag_id: str, run_id: str, task_ids: tuple[str, ...],
    states: tuple[str, ...], timeout: float = 180.0,
) -> dict[str, Any]:  # fmt: skip
    """The first task instance of ``task_ids`` seen in one of ``states`` (polled twice a
    second); a run that ends first, or a timeout, fails with the report."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ti in task_instances(deployment, dag_id, run_id):
            wanted = ti["task_id"] in task_ids and ti["state"] in states
            if wanted and (ti["state"] != "running" or ti["hostname"]):
                return ti
        state = deployment.airflow.get_json(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            raise ServerError(f"run {run_id} ended ({state}) before {task_ids} were {states}")
        time.sleep(0.5)
    raise ServerError(
        f"no {task_ids} task of {run_id} {states} after {timeout:.0f}s\n{deployment.report()}"
    )


def wait_for_running(
    deployment: CeleryDeployment, dag_id: str, run_id: str, task_ids: tuple[str, ...]
) -> dict[str, Any]:
    """The first task instance of ``task_ids`` seen running on a worker."""
    return wait_for_task(deployment, dag_id, run_id, task_ids, ("running",))


def run_to_end(
    deployment: CeleryDeployment, dag_id: str, run_id: str, supervise: bool = False
) -> str:
    """Poll the run until it ends; its final state. A server that exits fails at once; with
    ``supervise`` a worker that exits is started again (as systemd or Kubernetes would)."""
    began = time.monotonic()
    while time.monotonic() < began + RUN_TIMEOUT:
        state = str(deployment.airflow.get_json(f"/dags/{dag_id}/dagRuns/{run_id}")["state"])
        if state in ("success", "failed"):
            deployment.notes.append(f"{run_id}: {state} after {time.monotonic() - began:.0f}s")
            return state
        if supervise:
            for restarted in deployment.restart_exited_workers():
                deployment.notes.append(f"{run_id}: worker {restarted} restarted")
        for proc in deployment.procs.procs:
            if not proc.alive():
                raise ServerError(f"{proc.name} exited during {run_id}\n{deployment.report()}")
        time.sleep(2)
    raise ServerError(f"{run_id} not finished after {RUN_TIMEOUT:.0f}s\n{deployment.report()}")


def clear_run(
    deployment: CeleryDeployment, dag_id: str, run_id: str, task_ids: tuple[str, ...]
) -> None:
    """Clear these tasks of a finished run (as "Clear" in the UI): they run again."""
    body = {"dry_run": False, "dag_run_id": run_id, "only_failed": False}
    body |= {"reset_dag_runs": True, "task_ids": list(task_ids), "include_downstream": False}
    response = deployment.airflow.api("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)
    if response.status_code != 200:
        raise ServerError(f"clearTaskInstances: {response.status_code} {response.text}")
    cleared = {ti["task_id"] for ti in response.json()["task_instances"]}
    if cleared != set(task_ids):
        raise ServerError(f"clearTaskInstances cleared {sorted(cleared)}, not {task_ids}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if deployment.airflow.get_json(f"/dags/{dag_id}/dagRuns/{run_id}")["state"] != "success":
            return
        time.sleep(0.5)
    raise ServerError(f"run {run_id} still 'success' 30s after its tasks were cleared")
