"""Driving DAG runs on the Celery deployment: the workload, task tries, faults' timing.

A :class:`Workload` names the DAG the module runs, its mapped shard tasks, the run
configurations (several shards, one shard, slow shards) and what of a run's result must be the
same between runs (digests and verdicts).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.production.celery.scaleout import CeleryDeployment
from tests.production.servers import ServerError

RUN_TIMEOUT = 240.0


@dataclass(frozen=True)
class Workload:
    dag_id: str
    mapped: tuple[str, ...]  # the mapped shard tasks
    sharded: dict[str, Any]  # conf: several shards
    one_shard: dict[str, Any]  # conf: the same data in one shard
    slow: dict[str, Any]  # conf: several shards, each slow enough to be struck mid-task
    merge_tasks: tuple[str, ...]  # the tasks that publish a run's merged outputs
    outputs: Callable[[CeleryDeployment, str], dict[str, Any]]

    @property
    def dag_file(self) -> str:
        return f"{self.dag_id}.py"


def probe_outputs(deployment: CeleryDeployment, run_id: str) -> dict[str, Any]:
    merged = deployment.airflow.xcom("celery_shard_probe", run_id, "merge")
    if merged is None:
        return {}
    data = deployment.s3.get_object(Bucket=deployment.bucket, Key=_key(deployment, merged["uri"]))
    import hashlib

    assert hashlib.sha256(data["Body"].read()).hexdigest() == merged["sha256"], merged
    return {"merged_sha256": merged["sha256"]}


PROBE = Workload(
    dag_id="celery_shard_probe",
    mapped=("work_shard",),
    sharded={"shards": 6, "rows": 3000, "sleep": 1},
    one_shard={"shards": 1, "rows": 3000, "sleep": 0},
    slow={"shards": 4, "rows": 3000, "sleep": 5},
    merge_tasks=("merge",),
    outputs=probe_outputs,
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


def wait_for_running(
    deployment: CeleryDeployment, dag_id: str, run_id: str, task_ids: tuple[str, ...],
    timeout: float = 120.0,
) -> dict[str, Any]:  # fmt: skip
    """The first mapped task instance seen running on a worker (polled twice a second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ti in task_instances(deployment, dag_id, run_id):
            if ti["task_id"] in task_ids and ti["state"] == "running" and ti["hostname"]:
                return ti
        state = deployment.airflow.get_json(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            raise ServerError(f"run {run_id} ended ({state}) before a shard task was seen running")
        time.sleep(0.5)
    raise ServerError(
        f"no {task_ids} task of {run_id} running after {timeout:.0f}s\n{deployment.report()}"
    )


def run_to_end(deployment: CeleryDeployment, dag_id: str, run_id: str) -> str:
    began = time.monotonic()
    state = deployment.airflow.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT)
    deployment.notes.append(f"{run_id}: {state} after {time.monotonic() - began:.0f}s of waiting")
    return state


def clear_run(deployment: CeleryDeployment, dag_id: str, run_id: str) -> None:
    """Clear every task of a finished run (as "Clear" in the UI): the run runs again."""
    body = {"dry_run": False, "dag_run_id": run_id, "only_failed": False}
    body |= {"reset_dag_runs": True, "include_downstream": True}
    response = deployment.airflow.api("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)
    if response.status_code != 200:
        raise ServerError(f"clearTaskInstances: {response.status_code} {response.text}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if deployment.airflow.get_json(f"/dags/{dag_id}/dagRuns/{run_id}")["state"] != "success":
            return
        time.sleep(0.5)
    raise ServerError(f"run {run_id} still 'success' 30s after its tasks were cleared")
