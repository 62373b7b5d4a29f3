"""The CeleryExecutor deployment of the scale-out test, built on tests/production.

PostgreSQL, moto S3 and the MLflow server as in ``tests/production/deployment.py``; Redis
(our own ``redis-server``) as the Celery broker, the result backend on PostgreSQL; Airflow's
api-server, scheduler and dag-processor with ``CeleryExecutor``; two ``airflow celery worker``
processes, each with its own ``AIRFLOW_HOME``, ``MLSECOPS_HOME``, log server port and task
hostname. The Airflow connection reaches S3 through :class:`S3Proxy`, so a test can cut the
evidence store off. The configuration is the one ``docs/deployment.md`` describes.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.production.celery.s3proxy import S3Proxy
from tests.production.cluster import (
    PROJECT_ROOT,
    Airflow,
    airflow_environment,
    clean_environment,
    component_environment,
    start_airflow,
)
from tests.production.deployment import (
    _mlflow_environment,
    _s3_client,
    _settings,
    _signing_setup,
)
from tests.production.servers import (
    BIN,
    Proc,
    Processes,
    Redis,
    free_port,
    http_status,
    start_mlflow,
    start_moto,
    start_postgres,
    start_redis,
)

HERE = Path(__file__).resolve().parent
WORKERS = ("w1", "w2")
CONCURRENCY = 2
HEARTBEAT_TIMEOUT = 20  # seconds without a heartbeat before the scheduler fails a task
QUEUED_TIMEOUT = 45  # seconds in the queue (a message lost with the broker) before a retry
# The DAGs the cluster parses, copied into its own DAGs folder (only these: parsing the others
# on every task would cost time the budget does not have).
PROJECT_DAGS = ("sharded_data_gates.py",)
PII_KEY_CONN_ID = "mlsecops_pii_key"  # password: the pseudonymisation key (a secret)
PII_CHUNK_ROWS = 200  # policy knob: shards are whole chunks, so small data gives several shards


@dataclass
class Worker:
    name: str
    hostname: str
    proc: Proc
    starts: int = 1


@dataclass
class CeleryDeployment:
    """The running deployment and what the tests need to drive and inspect it."""

    airflow: Airflow
    procs: Processes
    redis: Redis
    proxy: S3Proxy
    s3: Any
    bucket: str
    mlflow_url: str
    base_env: dict[str, str]
    workers: dict[str, Worker] = field(default_factory=dict)
    runs: list[tuple[str, str]] = field(default_factory=list)  # (dag_id, run_id) triggered
    notes: list[str] = field(default_factory=list)  # what happened: printed at the module's end

    def report(self) -> str:
        parts = [f"S3 proxy: {self.proxy.refused} connection(s) cut during outages", *self.notes]
        for dag_id, run_id in self.runs:
            parts.append(f"=== {dag_id} / {run_id}")
            try:
                parts.append(f"task states: {self.airflow.task_states(dag_id, run_id)}")
            except Exception as err:  # the report must not fail
                parts.append(f"task states unavailable: {err}")
        parts.append(self.airflow.run_report(*self.runs[-1]) if self.runs else self.procs.report())
        return "\n".join(parts)

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        run_id = self.airflow.trigger(dag_id, conf)
        self.runs.append((dag_id, run_id))
        return run_id

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker and every process under it (its task runners too)."""
        import psutil

        worker = self.workers[name]
        try:
            children = psutil.Process(worker.proc.popen.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        self.procs.stop(worker.proc, signal.SIGKILL, grace=5)
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                continue

    def restart_exited_workers(self) -> list[str]:
        """What a process supervisor (systemd, a Kubernetes Deployment) does: start a worker
        that exited again, with a fresh home; the names of those restarted."""
        restarted = []
        for worker in [w for w in self.workers.values() if not w.proc.alive()]:
            restarted.append(f"{worker.name} (exit code {worker.proc.popen.returncode})")
            self.procs.stop(worker.proc, grace=1)
            worker.starts += 1
            worker.proc = start_worker(self, worker.name, f"{worker.name}-{worker.starts}")
        return restarted

    def replace_worker(self, name: str) -> None:
        """Start a new worker in a dead one's place: a new machine, with a new name and a
        fresh home (the retry must not land on the dead worker's name). Not waited for."""
        dead = self.workers.pop(name)
        new = f"{dead.name}r{dead.starts + 1}"
        self.workers[new] = Worker(new, f"{new}.celery.test", start_worker(self, new, new))


def _policy(folder: Path) -> tuple[str, str, Path]:
    """The production test's policy (signing key pinned) with a small PII chunk size and a
    fixed sampling seed: every run of the same data takes the same de-identification plan."""
    private_pem, public_pem, path = _signing_setup(folder)
    policy = yaml.safe_load(path.read_text())
    pii = policy["gates"]["pii_deidentification"]
    pii.update({"chunk_rows": PII_CHUNK_ROWS, "seed": 1234, "phone_regions": ["US"]})
    pii["key_conn_id"] = PII_KEY_CONN_ID  # sharding keys the table-wide deny list
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return private_pem, public_pem, path


def _dags_folder(work: Path) -> Path:
    folder = work / "dags"
    folder.mkdir()
    for name in PROJECT_DAGS:
        shutil.copyfile(PROJECT_ROOT / "dags" / name, folder / name)
    return folder


def _pythonpath(work: Path) -> Path:
    """A folder with the workers' hostname callable; nothing else of the repository."""
    folder = work / "pythonpath"
    folder.mkdir()
    shutil.copyfile(HERE / "hostname.py", folder / "mlsecops_ci_hostname.py")
    return folder


def _celery_settings(redis: Redis, result_backend: str, work: Path) -> dict[str, str]:
    return {
        "AIRFLOW__CELERY__BROKER_URL": redis.url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(CONCURRENCY),
        "AIRFLOW__CORE__PARALLELISM": str(CONCURRENCY * len(WORKERS)),
        "AIRFLOW__CORE__DAGS_FOLDER": str(_dags_folder(work)),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": str(QUEUED_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "5",
    }


def start_worker(deployment: CeleryDeployment, name: str, home: str) -> Proc:
    """``airflow celery worker`` named ``<name>@<host>``, task hostname ``<name>.celery.test``."""
    env = component_environment(deployment.base_env, deployment.airflow.work, home)
    env.update(
        {
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "mlsecops_ci_hostname.task_hostname",
            "MLSECOPS_CI_HOSTNAME": f"{name}.celery.test",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }
    )
    argv = [str(BIN / "airflow"), "celery", "worker", "--celery-hostname", f"{name}@%h"]
    argv += ["--concurrency", str(CONCURRENCY), "--without-mingle", "--without-gossip"]
    return deployment.procs.start(f"airflow-worker-{home}", argv, env)


def wait_for_workers(deployment: CeleryDeployment, names: list[str], timeout: float = 120) -> None:
    """Until each worker's log says it is ready (connected to the broker, consuming)."""

    def ready() -> bool:
        logs = [deployment.workers[n].proc.log for n in names]
        return all(log.is_file() and " ready." in log.read_text(errors="replace") for log in logs)

    deployment.procs.wait_for(f"Celery workers {names}", ready, timeout)


def start_celery_deployment(procs: Processes, work: Path) -> CeleryDeployment:
    postgres = start_postgres(procs)
    postgres.createdb("airflow")
    postgres.createdb("mlflow")
    redis = start_redis(procs, work / "redis")
    endpoint = start_moto(procs, clean_environment())
    proxy = S3Proxy(target=("127.0.0.1", int(endpoint.rsplit(":", 1)[1])))
    proxy.start()
    procs.on_stop(proxy.stop)
    s3 = _s3_client(endpoint)
    bucket = f"mlsecops-{int(time.time())}-celery"
    s3.create_bucket(Bucket=bucket)
    mlflow_url, _ = start_mlflow(
        procs, _mlflow_environment(endpoint), postgres.url("mlflow"), f"s3://{bucket}/mlflow"
    )
    private_pem, _, policy = _policy(work / "config")
    settings = _settings(bucket, proxy.endpoint, mlflow_url, (private_pem, policy))
    settings[f"AIRFLOW_CONN_{PII_KEY_CONN_ID.upper()}"] = json.dumps(
        {"conn_type": "generic", "password": secrets.token_hex(32)}
    )
    settings["MLSECOPS_SHARD_DIGEST_KEY"] = secrets.token_hex(32)  # the same on every worker
    settings["PYTHONPATH"] = str(_pythonpath(work))
    settings.update(_celery_settings(redis, postgres.url("airflow", "db+postgresql"), work))
    env = airflow_environment(
        work=work,
        database_url=postgres.url("airflow"),
        api_port=free_port(),
        settings=settings,
        executor="CeleryExecutor",
    )
    airflow = start_airflow(procs, work, env)
    deployment = CeleryDeployment(airflow, procs, redis, proxy, s3, bucket, mlflow_url, env)
    for name in WORKERS:
        proc = start_worker(deployment, name, name)
        deployment.workers[name] = Worker(name, f"{name}.celery.test", proc)
    procs.wait_for("the MLflow server", lambda: http_status(f"{mlflow_url}/health") == 200, 120)
    wait_for_workers(deployment, list(WORKERS))
    return deployment
