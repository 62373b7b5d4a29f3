"""ShadowTrafficSensor and its trigger over a real, digest-chained prediction log."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.sdk._shared.module_loading import import_string
from airflow.sdk.exceptions import TaskDeferred
from airflow.sdk.serde import deserialize, serialize

from mlsecops_provider.sensors.shadow_traffic import ShadowTrafficSensor
from mlsecops_provider.sensors.triggers.shadow_traffic import ShadowTrafficTrigger
from tests.sensors.serving_logs import write_log


def test_fires_once_the_shadow_scored_enough_requests(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log", 5)
    sensor = ShadowTrafficSensor(task_id="traffic", log_uri=log, min_requests=8)
    assert not sensor.poke({}).is_done
    write_log(tmp_path / "log", 5, start=5)
    done = sensor.poke({})
    assert done.is_done
    assert done.xcom_value["mirrored_requests"] == 10 and done.xcom_value["reason"] == "requests"
    assert done.xcom_value["shadow_version"] == "3"


def test_dropped_requests_do_not_count(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log", 20, shadow_status="dropped")
    sensor = ShadowTrafficSensor(task_id="traffic", log_uri=log, min_requests=1)
    assert not sensor.poke({}).is_done


def test_warmup_period_ends_the_wait(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log", 2)
    sensor = ShadowTrafficSensor(
        task_id="traffic", log_uri=log, min_requests=100, warmup=timedelta(seconds=0)
    )
    assert sensor.poke({}).xcom_value["reason"] == "period"


def test_deferrable_defers_and_the_trigger_fires(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log", 2)
    sensor = ShadowTrafficSensor(
        task_id="traffic", log_uri=log, min_requests=4, deferrable=True, poke_interval=0.05
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    classpath, kwargs = trigger.serialize()
    assert import_string(classpath) is ShadowTrafficTrigger
    trigger = ShadowTrafficTrigger(**deserialize(serialize(kwargs)))

    async def scenario() -> dict[str, object]:
        events = trigger.run()
        pending = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.3)
        assert not pending.done()
        await asyncio.to_thread(write_log, tmp_path / "log", 3, start=2)
        try:
            return dict((await asyncio.wait_for(pending, 10)).payload)
        finally:
            await events.aclose()

    event = asyncio.run(scenario())
    assert event["status"] == "success" and event["mirrored_requests"] == 5
    assert sensor.execute_complete({}, event)["reason"] == "requests"


def test_a_tampered_log_fails_the_trigger(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log", 2)
    chain = tmp_path / "log" / "chain.jsonl"
    chain.write_text(chain.read_text().replace('"rows":2', '"rows":9'))
    trigger = ShadowTrafficTrigger(log_uri=log, min_requests=1, poke_interval=0.05)

    async def first() -> dict[str, object]:
        events = trigger.run()
        try:
            return dict((await anext(events)).payload)
        finally:
            await events.aclose()

    event = asyncio.run(first())
    assert event["status"] == "error" and "AuditLogError" in str(event["message"])
