"""A small mapped DAG of the CeleryExecutor test: shard tasks that can be made slow.

``make_shards`` cuts ``rows`` rows into ``shards`` ranges; ``work_shard`` (mapped) waits
``sleep`` seconds (the window in which a fault test strikes), writes its rows to the artifact
store (S3, through the deployment's connection) and returns URI and digest; ``merge`` reads
every part, verifies its digest and publishes one object. A row's bytes depend only on its
number, so the merged object is the same for any shard count and any run.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task

DAG_ID = "celery_shard_probe"


def _storage() -> Any:
    from mlsecops_provider.connections import s3_client_factory
    from mlsecops_provider.core.storage import storage_for

    uri = os.environ["MLSECOPS_ARTIFACT_URI"]
    return storage_for(uri, s3_client_factory(os.environ.get("MLSECOPS_AWS_CONN_ID")))


def _uri(*parts: str) -> str:
    context = get_current_context()
    base = os.environ["MLSECOPS_ARTIFACT_URI"].rstrip("/")
    return "/".join([base, DAG_ID, context["run_id"], *parts])


@dag(
    dag_id=DAG_ID,
    schedule=None,
    catchup=False,
    params={"shards": 4, "rows": 2000, "sleep": 0},
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    tags=["test"],
)
def celery_shard_probe() -> None:
    @task
    def make_shards(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        assert params is not None
        count, rows = int(params["shards"]), int(params["rows"])
        size = -(-rows // count)
        starts = range(0, rows, size)
        return [
            {"index": i, "start": start, "stop": min(start + size, rows), "sleep": params["sleep"]}
            for i, start in enumerate(starts)
        ]

    @task
    def work_shard(shard: dict[str, Any]) -> dict[str, Any]:
        time.sleep(float(shard["sleep"]))
        index = int(shard["index"])
        rows = range(int(shard["start"]), int(shard["stop"]))
        data = "".join(f"{row},{row * 7919 % 1000}\n" for row in rows)
        uri = _uri("parts", f"part-{index:05d}.csv")
        _storage().write_bytes(uri, data.encode())
        return {"index": index, "uri": uri, "sha256": hashlib.sha256(data.encode()).hexdigest()}

    @task
    def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
        from mlsecops_provider.core.storage import read_verified

        storage = _storage()
        ordered = sorted(parts, key=lambda p: p["index"])
        data = b"".join(read_verified(storage, p["uri"], p["sha256"]) for p in ordered)
        uri = _uri("merged.csv")
        storage.write_bytes(uri, data)
        return {"uri": uri, "sha256": hashlib.sha256(data).hexdigest(), "parts": len(ordered)}

    merge(work_shard.expand(shard=make_shards()))


celery_shard_probe()
