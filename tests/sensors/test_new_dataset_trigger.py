"""NewDatasetTrigger: serialize() round-trips; run() fires on a new object, driven by asyncio."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import boto3
import pytest
from airflow.sdk._shared.module_loading import import_string
from airflow.sdk.serde import deserialize, serialize

from mlsecops_provider.core.storage import sha256_bytes
from mlsecops_provider.sensors.triggers.new_dataset import NewDatasetTrigger


def test_serialize_round_trips_through_airflow_serde() -> None:
    trigger = NewDatasetTrigger(
        prefix_uri="s3://bucket/incoming/",
        known_sha256=["b" * 64, "a" * 64, "b" * 64],
        suffixes=(".csv",),
        aws_conn_id="aws_prod",
        poke_interval=30,
    )
    classpath, kwargs = trigger.serialize()
    assert import_string(classpath) is NewDatasetTrigger
    assert kwargs == {
        "prefix_uri": "s3://bucket/incoming/",
        "known_sha256": ["a" * 64, "b" * 64],
        "suffixes": [".csv"],
        "aws_conn_id": "aws_prod",
        "poke_interval": 30.0,
    }
    restored = deserialize(serialize(kwargs))  # what dag.test and the triggerer do
    assert NewDatasetTrigger(**restored).serialize() == (classpath, kwargs)


def _first_event(trigger: NewDatasetTrigger, action: Any = None, wait: float = 10.0) -> Any:
    """Start run(); check it has not fired; run the blocking ``action``; await the event."""

    async def scenario() -> Any:
        events = trigger.run()
        pending = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.3)
        assert not pending.done(), "fired before anything changed"
        if action is not None:
            await asyncio.to_thread(action)
        try:
            return await asyncio.wait_for(pending, wait)
        finally:
            await events.aclose()

    return asyncio.run(scenario())


def test_run_fires_when_a_new_file_appears(tmp_path: Path) -> None:
    (tmp_path / "old.csv").write_bytes(b"a\n1\n")
    trigger = NewDatasetTrigger(
        prefix_uri=tmp_path.as_uri(), known_sha256=[sha256_bytes(b"a\n1\n")], poke_interval=0.05
    )
    event = _first_event(trigger, lambda: (tmp_path / "new.csv").write_bytes(b"a\n2\n"))
    assert event.payload == {
        "status": "success",
        "uri": (tmp_path / "new.csv").as_uri(),
        "sha256": sha256_bytes(b"a\n2\n"),
        "etag": event.payload["etag"],
    }


def test_run_keeps_waiting_on_an_unchanged_object(tmp_path: Path) -> None:
    (tmp_path / "old.csv").write_bytes(b"a\n1\n")
    trigger = NewDatasetTrigger(
        prefix_uri=tmp_path.as_uri(), known_sha256=[sha256_bytes(b"a\n1\n")], poke_interval=0.05
    )
    with pytest.raises(TimeoutError):
        _first_event(trigger, wait=0.5)


def test_run_fires_on_a_new_s3_object(s3_bucket: str) -> None:
    client = boto3.client("s3")
    client.put_object(Bucket=s3_bucket, Key="in/b1.parquet", Body=b"one")
    trigger = NewDatasetTrigger(
        prefix_uri=f"s3://{s3_bucket}/in/",
        known_sha256=[sha256_bytes(b"one")],
        poke_interval=0.05,
    )
    event = _first_event(
        trigger, lambda: client.put_object(Bucket=s3_bucket, Key="in/b2.parquet", Body=b"two")
    )
    assert event.payload["status"] == "success"
    assert event.payload["uri"] == f"s3://{s3_bucket}/in/b2.parquet"
    assert event.payload["sha256"] == sha256_bytes(b"two")


def test_run_reports_an_error_event() -> None:
    trigger = NewDatasetTrigger(prefix_uri="gs://bucket/in/", poke_interval=0.05)

    async def first() -> Any:
        return await anext(trigger.run())

    event = asyncio.run(first())
    assert event.payload["status"] == "error"
    assert "unknown URI scheme 'gs'" in event.payload["message"]
