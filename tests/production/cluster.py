"""Airflow on PostgreSQL with LocalExecutor: api-server, scheduler and dag-processor.

Each component gets the deployment's configuration as environment variables (what a Helm
chart or a compose file would set) plus an ``AIRFLOW_HOME`` and an ``MLSECOPS_HOME`` of its
own: nothing on local disk is shared between components, as on Celery or Kubernetes workers.
The test talks to Airflow only through the REST API, with a JWT from the simple auth manager.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.production.servers import BIN, HOST, Processes, ServerError, free_port, tail

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("api-server", "scheduler", "dag-processor")
USER, PASSWORD = "mlsecops-ci", "mlsecops-ci-Pa55"
# The test session's own settings (tests/conftest.py) must not leak into the servers.
PRIVATE_PREFIXES = ("AIRFLOW", "MLFLOW_", "MLSECOPS_", "AWS_", "GX_", "PG")


def clean_environment() -> dict[str, str]:
    """``os.environ`` without Airflow, MLflow, MLSecOps, AWS and PostgreSQL settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(PRIVATE_PREFIXES)}


def airflow_environment(
    *,
    work: Path,
    database_url: str,
    api_port: int,
    settings: Mapping[str, str],
    executor: str = "LocalExecutor",
) -> dict[str, str]:
    """The deployment-wide configuration every Airflow component gets (``settings`` last:
    they may override any of it, e.g. the DAGs folder)."""
    from cryptography.fernet import Fernet

    passwords = work / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    api = f"http://{HOST}:{api_port}"
    return {
        **clean_environment(),
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        # Only the run the test triggers: unpausing would otherwise start the DAG's latest
        # missed cron slot, on its default source.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "GX_ANALYTICS_ENABLED": "false",
        "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
        **settings,
    }


def component_environment(base: Mapping[str, str], work: Path, name: str) -> dict[str, str]:
    """One component's environment: its own, fresh ``AIRFLOW_HOME`` and ``MLSECOPS_HOME``."""
    airflow_home = work / name / "airflow-home"
    mlsecops_home = work / name / "mlsecops-home"
    airflow_home.mkdir(parents=True)
    mlsecops_home.mkdir(parents=True)
    return {**base, "AIRFLOW_HOME": str(airflow_home), "MLSECOPS_HOME": str(mlsecops_home)}


@dataclass
class Airflow:
    """A running Airflow deployment and a REST client for it."""

    url: str
    work: Path
    procs: Processes
    token: str = ""

    def login(self) -> None:
        response = requests.post(
            f"{self.url}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=30
        )
        if response.status_code != 201:
            raise ServerError(f"POST /auth/token: {response.status_code} {response.text}")
        self.token = response.json()["access_token"]

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.request(
            method, f"{self.url}/api/v2{path}", headers=headers, timeout=30, **kwargs
        )

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.api("GET", path, **kwargs)
        if response.status_code != 200:
            raise ServerError(f"GET {path}: {response.status_code} {response.text}")
        return response.json()

    def home(self, component: str, which: str = "mlsecops-home") -> Path:
        return self.work / component / which

    def wait_for_dag(self, dag_id: str, timeout: float, dag_file: str) -> None:
        """Wait until the dag-processor has parsed the DAG; its file's import errors fail."""

        def parsed() -> bool:
            errors = self.get_json("/importErrors")["import_errors"]
            errors = [e for e in errors if dag_file in str(e.get("filename"))]
            if errors:
                raise AssertionError(f"{dag_file}: import errors {errors}")
            return self.api("GET", f"/dags/{dag_id}").status_code == 200

        try:
            self.procs.wait_for(f"DAG {dag_id} to be parsed", parsed, timeout)
        except AssertionError as err:
            raise ServerError(str(err)) from err

    def unpause(self, dag_id: str) -> None:
        response = self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        if response.status_code != 200 or response.json()["is_paused"]:
            raise ServerError(f"PATCH /dags/{dag_id}: {response.status_code} {response.text}")

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> str:
        body = {"logical_date": None, "conf": dict(conf)}
        response = self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)
        if response.status_code != 200:
            raise ServerError(
                f"POST /dags/{dag_id}/dagRuns: {response.status_code} {response.text}"
            )
        return str(response.json()["dag_run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        """Poll the run until it finishes; its final state."""
        deadline = time.monotonic() + timeout
        state = "unknown"
        while time.monotonic() < deadline:
            state = self.get_json(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return str(state)
            for proc in self.procs.procs:
                if not proc.alive():
                    raise ServerError(f"{proc.name} exited during the run\n{tail(proc.log)}")
            time.sleep(2)
        raise ServerError(
            f"DAG run {dag_id}/{run_id} still {state} after {timeout:.0f}s\n"
            + self.run_report(dag_id, run_id)
        )

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        data = self.get_json(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: str(ti["state"]) for ti in data["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """An XCom value through the REST API; None when the task pushed none."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        if self.api("GET", path).status_code == 404:
            return None
        value = self.get_json(path)["value"]
        return json.loads(value) if isinstance(value, str) else value

    def run_report(self, dag_id: str, run_id: str) -> str:
        """Task states, task logs (from the disk of the component that ran each task: the
        scheduler with LocalExecutor, a worker with CeleryExecutor) and the server logs."""
        parts = []
        try:
            parts.append(f"task states: {self.task_states(dag_id, run_id)}")
        except (ServerError, requests.RequestException) as err:
            parts.append(f"task states unavailable: {err}")
        for component in sorted(p.name for p in self.work.iterdir() if p.is_dir()):
            logs = self.home(component, "airflow-home") / "logs"
            for log in sorted(logs.rglob("*.log")) if logs.is_dir() else []:
                name = f"{component}: {log.relative_to(logs)}"
                parts.append(f"--- task log {name}\n{tail(log, 80)}")
        parts.append(self.procs.report(60))
        return "\n".join(parts)


def start_airflow(procs: Processes, work: Path, base_env: Mapping[str, str]) -> Airflow:
    """``airflow db migrate``, then the three components; waits for the API to answer."""
    airflow = str(BIN / "airflow")
    migrate_env = component_environment(base_env, work, "db-migrate")
    procs.run("airflow-db-migrate", [airflow, "db", "migrate"], migrate_env, timeout=300)
    url = base_env["AIRFLOW__API__BASE_URL"]
    port = base_env["AIRFLOW__API__PORT"]
    commands = {
        "api-server": [airflow, "api-server", "--host", HOST, "--port", port, "--workers", "1"],
        "scheduler": [airflow, "scheduler"],
        "dag-processor": [airflow, "dag-processor"],
    }
    for name, argv in commands.items():
        procs.start(f"airflow-{name}", argv, component_environment(base_env, work, name))
    cluster = Airflow(url, work, procs)
    procs.wait_for(
        "the Airflow API server",
        lambda: requests.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200,
        120,
    )
    cluster.login()
    return cluster


def aws_connection(endpoint: str, key: str, secret: str) -> str:
    """An Airflow AWS connection as ``AIRFLOW_CONN_<ID>`` JSON, ``endpoint_url`` in extra."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": key,
            "password": secret,
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
    )
