"""Scale-out on CeleryExecutor, really run: Redis, two workers, faults.

One deployment for the module (``conftest.py``): Airflow with CeleryExecutor on PostgreSQL,
Debian's redis-server as the broker, two ``airflow celery worker`` processes with their own
homes and task hostnames, evidence and artifacts in moto S3 behind a proxy that can cut it
off. The module runs the sharded DAG undisturbed (several shards, and one shard), then with a
worker killed mid-shard, with Redis restarted mid-run, with the evidence store unreachable for
a while, and clears a finished run; every disturbed run must end with the undisturbed result.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.production.celery.runs import (
    PROBE,
    Workload,
    clear_run,
    run_to_end,
    task_instances,
    tries,
    wait_for_running,
)
from tests.production.celery.scaleout import CeleryDeployment
from tests.production.servers import REDIS_MISSING, REDIS_SERVER

pytestmark = pytest.mark.slow
OUTAGE_SECONDS = 12.0  # S3 unreachable: longer than botocore's own retries, shorter than the DAG's


@pytest.fixture(scope="module")
def workload(celery: CeleryDeployment) -> Workload:
    chosen = PROBE
    celery.airflow.wait_for_dag(chosen.dag_id, timeout=120, dag_file=chosen.dag_file)
    celery.airflow.unpause(chosen.dag_id)
    return chosen


@pytest.fixture(scope="module")
def undisturbed(celery: CeleryDeployment, workload: Workload) -> dict[str, Any]:
    """The sharded run and the one-shard run, side by side; both must succeed."""
    runs = {
        "sharded": celery.trigger(workload.dag_id, workload.sharded),
        "one_shard": celery.trigger(workload.dag_id, workload.one_shard),
    }
    states = {name: run_to_end(celery, workload.dag_id, run) for name, run in runs.items()}
    assert set(states.values()) == {"success"}, (states, celery.report())
    outputs = {name: workload.outputs(celery, run) for name, run in runs.items()}
    return {"runs": runs, "outputs": outputs}


def _shard_tis(celery: CeleryDeployment, workload: Workload, run_id: str) -> list[dict[str, Any]]:
    found = task_instances(celery, workload.dag_id, run_id)
    return [ti for ti in found if ti["task_id"] in workload.mapped]


def test_redis_server_is_installed() -> None:
    """Fails (never skips) without Debian's redis-server: ``make test`` installs it."""
    assert REDIS_SERVER.is_file(), REDIS_MISSING.format(path=REDIS_SERVER)


def test_sharded_run_succeeds_with_shards_on_both_workers(
    celery: CeleryDeployment, workload: Workload, undisturbed: dict[str, Any]
) -> None:
    shard_tis = _shard_tis(celery, workload, undisturbed["runs"]["sharded"])
    assert len(shard_tis) >= 2 * len(workload.mapped), shard_tis
    assert {ti["state"] for ti in shard_tis} == {"success"}, shard_tis
    hosts = {ti["hostname"] for ti in shard_tis}
    assert hosts == {w.hostname for w in celery.workers.values()}, sorted(hosts)
    every = task_instances(celery, workload.dag_id, undisturbed["runs"]["sharded"])
    assert {ti["state"] for ti in every} == {"success"}, every


def test_sharded_outputs_equal_the_one_shard_run(undisturbed: dict[str, Any]) -> None:
    sharded, one = undisturbed["outputs"]["sharded"], undisturbed["outputs"]["one_shard"]
    assert sharded and sharded == one, undisturbed["outputs"]


def test_worker_killed_mid_shard_is_retried_on_the_other_worker(
    celery: CeleryDeployment, workload: Workload, undisturbed: dict[str, Any]
) -> None:
    run_id = celery.trigger(workload.dag_id, workload.slow)
    victim_ti = wait_for_running(celery, workload.dag_id, run_id, workload.mapped)
    time.sleep(1.0)  # into the task's work, past its start
    victim = next(w for w in celery.workers.values() if w.hostname == victim_ti["hostname"])
    celery.kill_worker(victim.name)
    state = run_to_end(celery, workload.dag_id, run_id)
    celery.restart_worker(victim.name, wait=False)  # the next tests have two workers again
    assert state == "success", celery.report()
    history = tries(celery, workload.dag_id, run_id, victim_ti)
    assert len(history) >= 2, history
    first, last = history[0], history[-1]
    assert first["hostname"] == victim.hostname and first["state"] != "success", history
    survivor = {w.hostname for w in celery.workers.values()} - {victim.hostname}
    assert last["state"] == "success" and last["hostname"] in survivor, history
    assert workload.outputs(celery, run_id) == undisturbed["outputs"]["sharded"]


def test_redis_restarted_mid_run_completes_or_fails_without_publishing(
    celery: CeleryDeployment, workload: Workload, undisturbed: dict[str, Any]
) -> None:
    run_id = celery.trigger(workload.dag_id, workload.slow)
    wait_for_running(celery, workload.dag_id, run_id, workload.mapped)
    celery.redis.restart(down=2.0)  # an empty broker: queued messages are gone
    state = run_to_end(celery, workload.dag_id, run_id)
    outputs = workload.outputs(celery, run_id)
    celery.notes.append(f"Redis restarted mid-run: the run ended {state}")
    if state == "success":
        assert outputs == undisturbed["outputs"]["sharded"], celery.report()
    else:  # a clear failure: the merge never published anything
        states = celery.airflow.task_states(workload.dag_id, run_id)
        assert "failed" in states.values() or "upstream_failed" in states.values(), states
        assert outputs == {}, outputs
        assert all(states[t] != "success" for t in workload.merge_tasks), states


def test_evidence_store_unreachable_for_a_while_is_retried(
    celery: CeleryDeployment, workload: Workload, undisturbed: dict[str, Any]
) -> None:
    run_id = celery.trigger(workload.dag_id, workload.slow)
    wait_for_running(celery, workload.dag_id, run_id, workload.mapped)
    refused = celery.proxy.refused
    celery.proxy.outage(True)
    try:
        time.sleep(OUTAGE_SECONDS)
    finally:
        celery.proxy.outage(False)
    state = run_to_end(celery, workload.dag_id, run_id)
    assert state == "success", celery.report()
    assert celery.proxy.refused > refused, "the outage cut no connection: it tested nothing"
    retried = [ti for ti in task_instances(celery, workload.dag_id, run_id) if ti["try_number"] > 1]
    assert retried, "no task needed a retry: the outage hit no write"
    celery.notes.append(f"S3 outage: retried {[(t['task_id'], t['map_index']) for t in retried]}")
    assert workload.outputs(celery, run_id) == undisturbed["outputs"]["sharded"]


def test_clearing_a_finished_run_is_idempotent(
    celery: CeleryDeployment, workload: Workload, undisturbed: dict[str, Any]
) -> None:
    run_id = undisturbed["runs"]["sharded"]
    clear_run(celery, workload.dag_id, run_id)
    assert run_to_end(celery, workload.dag_id, run_id) == "success", celery.report()
    assert workload.outputs(celery, run_id) == undisturbed["outputs"]["sharded"]


@pytest.fixture(scope="module", autouse=True)
def _timing(celery: CeleryDeployment) -> Iterator[None]:
    """Prints (with ``-s``) how long the module and each run took, and what each fault did."""
    began = time.monotonic()
    yield
    print("\n".join(["", *celery.notes, f"[celery module: {time.monotonic() - began:.0f}s]"]))
