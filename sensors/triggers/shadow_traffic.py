"""ShadowTrafficTrigger: poll the prediction log in the triggerer until the shadow warmed up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from mlsecops_provider.connections import s3_hook_factory
from mlsecops_provider.core.errors import MLSecOpsError

CLASSPATH = "mlsecops_provider.sensors.triggers.shadow_traffic.ShadowTrafficTrigger"


def warmed_up(
    traffic: dict[str, Any], min_requests: int, warmup_seconds: float | None, started: float
) -> str | None:
    """Why the shadow has warmed up (``requests`` or ``period``), or None."""
    if traffic["mirrored_requests"] >= min_requests:
        return "requests"
    if warmup_seconds is not None and time.time() - started >= warmup_seconds:
        return "period"
    return None


class ShadowTrafficTrigger(BaseTrigger):
    """Fire when the shadow scored ``min_requests`` requests, or ``warmup_seconds`` passed.

    Reading the log (chain and digests verified) is blocking and runs in a thread. The event
    is ``{status: success, reason, log_uri, shadow_version, mirrored_requests, ...}`` or
    ``{status: error, message}``.

    :param log_uri: the prediction log.
    :param min_requests: mirrored requests that end the wait.
    :param warmup_seconds: a period that ends the wait anyway (None: wait for the requests).
    :param started: epoch seconds the warm-up began (the sensor's first check).
    :param shadow_version: the shadow version to count (None: the latest in the log).
    :param aws_conn_id: Airflow AWS connection for ``s3://`` (None: boto3's defaults).
    :param poke_interval: seconds between polls.
    """

    def __init__(
        self,
        *,
        log_uri: str,
        min_requests: int,
        warmup_seconds: float | None = None,
        started: float | None = None,
        shadow_version: str | None = None,
        aws_conn_id: str | None = None,
        poke_interval: float = 60.0,
    ) -> None:
        super().__init__()
        self.log_uri = log_uri
        self.min_requests = int(min_requests)
        self.warmup_seconds = None if warmup_seconds is None else float(warmup_seconds)
        self.started = time.time() if started is None else float(started)
        self.shadow_version = shadow_version
        self.aws_conn_id = aws_conn_id
        self.poke_interval = float(poke_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {
                "log_uri": self.log_uri,
                "min_requests": self.min_requests,
                "warmup_seconds": self.warmup_seconds,
                "started": self.started,
                "shadow_version": self.shadow_version,
                "aws_conn_id": self.aws_conn_id,
                "poke_interval": self.poke_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from mlsecops_provider.core.serving.warmup import shadow_traffic

        factory = s3_hook_factory(self.aws_conn_id)
        while True:
            try:
                traffic = await asyncio.to_thread(
                    shadow_traffic, self.log_uri, self.shadow_version, factory
                )
            except MLSecOpsError as err:
                yield TriggerEvent({"status": "error", "message": f"{type(err).__name__}: {err}"})
                return
            reason = warmed_up(traffic, self.min_requests, self.warmup_seconds, self.started)
            if reason:
                yield TriggerEvent({"status": "success", "reason": reason, **traffic})
                return
            await asyncio.sleep(self.poke_interval)
