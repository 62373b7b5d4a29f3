"""Scale-out on CeleryExecutor, really run: Redis, two workers, the sharded gates, faults.

One deployment for the module (``conftest.py``): Airflow with CeleryExecutor on PostgreSQL,
Debian's redis-server as the broker, two ``airflow celery worker`` processes with their own
homes and task hostnames, evidence and artifacts in moto S3 behind a proxy that can cut it
off. ``sharded_data_gates`` runs on a generated table undisturbed (three shards, and one
shard), then once more with three faults, one per phase of the run: a worker SIGKILLed while
it runs a validation shard, the evidence store unreachable while the validation merge reads
the partials and writes its report, Redis restarted while de-identification shards run (a
worker that exits with the broker is restarted, as its supervisor would). Every fault is
checked on its own, and the disturbed run must end with the undisturbed result. Last, a
finished run's merges and de-identification tasks are cleared and run again. (Budget: few
runs, small data.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.production.celery.runs import (
    SHARDED,
    Workload,
    clear_run,
    run_to_end,
    task_instances,
    tries,
    wait_for_running,
    wait_for_task,
)
from tests.production.celery.scaleout import CeleryDeployment
from tests.production.servers import REDIS_MISSING, REDIS_SERVER

pytestmark = pytest.mark.slow
# S3 unreachable: longer than botocore's own retries, shorter than the DAG's retry_delay
OUTAGE_SECONDS = 12.0
CLEARED = ("validate_data", "deidentify_plan", "deidentify_shard", "deidentify_pii")


@pytest.fixture(scope="module")
def workload(celery: CeleryDeployment) -> Workload:
    chosen = SHARDED
    celery.airflow.wait_for_dag(chosen.dag_id, timeout=120, dag_file=chosen.dag_file)
    celery.airflow.unpause(chosen.dag_id)
    return chosen


@pytest.fixture(scope="module")
def undisturbed(celery: CeleryDeployment, workload: Workload) -> dict[str, Any]:
    """The sharded run and the one-shard run of the same table; both must succeed. The
    second starts once the first has ingested (two ingests of one table at the same moment
    race in MLflow's dataset table: a retry, and 30 s, the budget does not have)."""
    confs = workload.confs(celery)
    runs = {"sharded": celery.trigger(workload.dag_id, confs["sharded"])}
    wait_for_task(celery, workload.dag_id, runs["sharded"], ("split_dataset",), ("running",
                  "success"))  # fmt: skip
    runs["one_shard"] = celery.trigger(workload.dag_id, confs["one_shard"])
    states = {name: run_to_end(celery, workload.dag_id, run) for name, run in runs.items()}
    if set(states.values()) != {"success"}:
        pytest.fail(f"undisturbed runs: {states}\n{celery.report()}", pytrace=False)
    outputs = {name: workload.outputs(celery, run) for name, run in runs.items()}
    return {"runs": runs, "outputs": outputs, "conf": confs["sharded"]}


@pytest.fixture(scope="module")
def disturbed(
    celery: CeleryDeployment, workload: Workload, undisturbed: dict[str, Any]
) -> dict[str, Any]:
    """The sharded run again, struck by three faults in turn (what each did is recorded)."""
    run_id = celery.trigger(workload.dag_id, undisturbed["conf"])
    facts: dict[str, Any] = {"run_id": run_id}
    # 1. a worker dies with a validation shard in its hands
    victim_ti = wait_for_running(celery, workload.dag_id, run_id, ("validate_shard",))
    time.sleep(1.0)  # into the task's work, past its start
    victim = next(w for w in celery.workers.values() if w.hostname == victim_ti["hostname"])
    facts["victim"], facts["victim_ti"] = victim.hostname, victim_ti
    celery.kill_worker(victim.name)
    celery.replace_worker(victim.name)
    celery.notes.append(
        f"SIGKILL {victim.hostname} running validate_shard/{victim_ti['map_index']}"
    )
    # 2. the evidence store vanishes while the validation merge reads partials, writes its report
    wait_for_running(celery, workload.dag_id, run_id, ("validate_data",))
    facts["refused_before"] = celery.proxy.refused
    celery.proxy.outage(True)
    try:
        time.sleep(OUTAGE_SECONDS)
    finally:
        celery.proxy.outage(False)
    facts["refused"] = celery.proxy.refused - facts["refused_before"]
    # 3. the broker restarts (empty) while the de-identification shards run
    waiting = wait_for_running(celery, workload.dag_id, run_id, ("deidentify_shard",))
    celery.redis.restart(down=2.0)
    facts["redis_restart_during"] = (waiting["task_id"], waiting["map_index"], waiting["state"])
    facts["state"] = run_to_end(celery, workload.dag_id, run_id, supervise=True)
    facts["outputs"] = workload.outputs(celery, run_id)
    shown = {k: v for k, v in facts.items() if k not in ("victim_ti", "outputs")}
    celery.notes.append(f"disturbed run: {shown}")
    return facts


def _shard_tis(celery: CeleryDeployment, workload: Workload, run_id: str) -> list[dict[str, Any]]:
    found = task_instances(celery, workload.dag_id, run_id)
    return [ti for ti in found if ti["task_id"] in workload.mapped]


def test_redis_server_is_installed() -> None:
    """Fails (never skips) without Debian's redis-server: ``make test`` installs it."""
    assert REDIS_SERVER.is_file(), REDIS_MISSING.format(path=REDIS_SERVER)


def test_sharded_run_succeeds_with_shards_on_both_workers(
    celery: CeleryDeployment, workload: Workload, undisturbed: dict[str, Any]
) -> None:
    run_id = undisturbed["runs"]["sharded"]
    shard_tis = _shard_tis(celery, workload, run_id)
    assert len(shard_tis) >= 2 * len(workload.mapped), shard_tis
    assert {ti["state"] for ti in shard_tis} == {"success"}, shard_tis
    hosts = {ti["hostname"] for ti in shard_tis}
    assert hosts == {w.hostname for w in celery.workers.values()}, sorted(hosts)
    every = task_instances(celery, workload.dag_id, run_id)
    assert {ti["state"] for ti in every} == {"success"}, every


def test_sharded_outputs_equal_the_one_shard_run(undisturbed: dict[str, Any]) -> None:
    """Same verdicts and subjects for both gates, the same de-identified bytes."""
    sharded, one = undisturbed["outputs"]["sharded"], undisturbed["outputs"]["one_shard"]
    assert "deidentified.sha256" in sharded, sharded
    assert sharded == one, undisturbed["outputs"]


def test_worker_killed_mid_shard_is_retried_on_another_worker(
    celery: CeleryDeployment, workload: Workload, disturbed: dict[str, Any]
) -> None:
    history = tries(celery, workload.dag_id, disturbed["run_id"], disturbed["victim_ti"])
    assert len(history) >= 2, history
    first, last = history[0], history[-1]
    assert first["hostname"] == disturbed["victim"] and first["state"] != "success", history
    assert last["state"] == "success" and last["hostname"] != disturbed["victim"], history


def test_evidence_store_unreachable_for_a_while_is_retried(
    celery: CeleryDeployment, workload: Workload, disturbed: dict[str, Any]
) -> None:
    assert disturbed["refused"] > 0, "the outage cut no connection: it tested nothing"
    merge = next(
        ti
        for ti in task_instances(celery, workload.dag_id, disturbed["run_id"])
        if ti["task_id"] == "validate_data"
    )
    history = tries(celery, workload.dag_id, disturbed["run_id"], merge)
    assert len(history) >= 2 and history[-1]["state"] == "success", history
    assert history[0]["state"] != "success", history  # the try the outage struck


def test_redis_restart_completes_or_fails_without_publishing(
    celery: CeleryDeployment, workload: Workload, disturbed: dict[str, Any]
) -> None:
    if disturbed["state"] != "success":  # a clear failure: the merge published nothing
        states = celery.airflow.task_states(workload.dag_id, disturbed["run_id"])
        assert {"failed", "upstream_failed"} & set(states.values()), states
        assert all(states[t] != "success" for t in workload.merge_tasks), states
        assert "deidentified.sha256" not in disturbed["outputs"], disturbed["outputs"]


def test_disturbed_run_ends_with_the_undisturbed_result(
    disturbed: dict[str, Any], undisturbed: dict[str, Any]
) -> None:
    """Every report and dataset it names was read back from S3 and matched its digest."""
    assert disturbed["state"] == "success", disturbed
    assert disturbed["outputs"] == undisturbed["outputs"]["sharded"]


def test_clearing_a_finished_run_is_idempotent(
    celery: CeleryDeployment, workload: Workload, undisturbed: dict[str, Any]
) -> None:
    run_id = undisturbed["runs"]["sharded"]
    mlflow_before = workload.mlflow_runs(celery, run_id)
    clear_run(celery, workload.dag_id, run_id, CLEARED)
    assert run_to_end(celery, workload.dag_id, run_id) == "success", celery.report()
    assert workload.outputs(celery, run_id) == undisturbed["outputs"]["sharded"]
    assert len(mlflow_before) == 1, mlflow_before
    assert workload.mlflow_runs(celery, run_id) == mlflow_before  # no new run, no new input


@pytest.fixture(scope="module", autouse=True)
def _timing(celery: CeleryDeployment) -> Iterator[None]:
    """Prints (with ``-s``) how long the module and each run took, and what each fault did."""
    began = time.monotonic()
    yield
    print("\n".join(["", *celery.notes, f"[celery module: {time.monotonic() - began:.0f}s]"]))
