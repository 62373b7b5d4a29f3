"""ShadowTrafficSensor: wait until the shadow has seen enough production traffic."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from mlsecops_provider.connections import s3_client_factory
from mlsecops_provider.core.errors import StorageError
from mlsecops_provider.core.serving.warmup import shadow_traffic
from mlsecops_provider.core.storage import normalise_uri
from mlsecops_provider.sensors.triggers.shadow_traffic import ShadowTrafficTrigger, warmed_up


def _default_deferrable() -> bool:
    from airflow.sdk.configuration import conf

    return conf.getboolean("operators", "default_deferrable", fallback=False)


class ShadowTrafficSensor(BaseSensorOperator):
    """Wait until the shadow scored ``min_requests`` mirrored requests, or a warm-up period.

    Counts from the prediction log ``mlsecops serve`` writes (its chain and batch digests
    are verified on every read; a broken log fails the task). With ``warmup`` the wait also
    ends when that period has passed since the first check; the warm-up gate then judges
    whether the traffic was enough.

    :param log_uri: the prediction log (``file://`` or ``s3://``). Templated.
    :param min_requests: mirrored requests that end the wait.
    :param warmup: a period that ends the wait anyway (None: wait for the requests only).
    :param shadow_version: the shadow version to count (None: the latest in the log). Templated.
    :param aws_conn_id: Airflow AWS connection for ``s3://`` (None: boto3's defaults).
    :param deferrable: wait in the triggerer (:class:`ShadowTrafficTrigger`) between checks.
    :return: ``{reason, log_uri, shadow_version, requests, mirrored_requests, first_seen}``.
    """

    template_fields: Sequence[str] = ("log_uri", "shadow_version")
    ui_color = "#eaf4fb"

    def __init__(
        self,
        *,
        log_uri: str,
        min_requests: int = 200,
        warmup: timedelta | None = None,
        shadow_version: str | None = None,
        aws_conn_id: str | None = None,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if min_requests < 1:
            raise ValueError("min_requests must be at least 1")
        self.log_uri = log_uri
        self.min_requests = min_requests
        self.warmup = warmup
        self.shadow_version = shadow_version
        self.aws_conn_id = aws_conn_id
        self.deferrable = _default_deferrable() if deferrable is None else deferrable
        self._started: float | None = None

    @cached_property
    def uri(self) -> str:
        return normalise_uri(self.log_uri)

    def _check(self) -> dict[str, Any] | None:
        if self._started is None:
            self._started = time.time()
        version = str(self.shadow_version) if self.shadow_version else None
        traffic = shadow_traffic(self.uri, version, s3_client_factory(self.aws_conn_id))
        seconds = self.warmup.total_seconds() if self.warmup is not None else None
        reason = warmed_up(traffic, self.min_requests, seconds, self._started)
        self.log.info(
            "shadow v%s: %d of %d mirrored requests scored",
            traffic["shadow_version"],
            traffic["mirrored_requests"],
            self.min_requests,
        )
        return {"reason": reason, **traffic} if reason else None

    def poke(self, context: Any) -> PokeReturnValue:
        found = self._check()
        return PokeReturnValue(found is not None, found)

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        found = self._check()
        if found is not None:
            return found
        self.defer(
            trigger=ShadowTrafficTrigger(
                log_uri=self.uri,
                min_requests=self.min_requests,
                warmup_seconds=self.warmup.total_seconds() if self.warmup is not None else None,
                started=self._started,
                shadow_version=str(self.shadow_version) if self.shadow_version else None,
                aws_conn_id=self.aws_conn_id,
                poke_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "success":
            raise StorageError(f"reading {self.log_uri} failed: {event.get('message')}")
        self.log.info(
            "Shadow warmed up (%s): %s requests", event["reason"], event["mirrored_requests"]
        )
        return {k: v for k, v in event.items() if k != "status"}
