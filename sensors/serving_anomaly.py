"""ServingAnomalySensor: fire an alert (or retrain) asset when serving misbehaves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Asset, BaseSensorOperator, PokeReturnValue

from mlsecops_provider.connections import s3_client_factory
from mlsecops_provider.core.serving.anomaly import AnomalyConfig, serving_anomalies
from mlsecops_provider.core.storage import normalise_uri

SERVING_ALERT = Asset("mlsecops://serving-alert")


class ServingAnomalySensor(BaseSensorOperator):
    """Watch the prediction log for latency spikes, error, fallback and profile-violation
    rates and drift of the served predictions (:mod:`~mlsecops_provider.core.serving.anomaly`).

    When the recent window is anomalous the sensor succeeds and its outlet asset (default
    ``mlsecops://serving-alert``; pass the retrain-request asset to retrain instead) gets an
    event whose extra says why: ``{reason: "serving_anomaly", reasons, metrics, log_uri}``.
    A log whose chain or digests do not verify fails the task (fail closed).

    :param log_uri: the prediction log (``file://`` or ``s3://``). Templated.
    :param config: thresholds (:class:`AnomalyConfig`); the defaults suit a busy endpoint.
    :param asset: the asset to emit (also added to ``outlets``).
    :param aws_conn_id: Airflow AWS connection for ``s3://`` (None: boto3's defaults).
    :return: the same dict as the event's extra.
    """

    template_fields: Sequence[str] = ("log_uri",)
    ui_color = "#fdecea"

    def __init__(
        self,
        *,
        log_uri: str,
        config: AnomalyConfig | None = None,
        asset: Asset = SERVING_ALERT,
        aws_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        outlets = list(kwargs.pop("outlets", None) or [])
        super().__init__(outlets=[*outlets, asset] if asset not in outlets else outlets, **kwargs)
        self.log_uri = log_uri
        self.config = config or AnomalyConfig()
        self.asset = asset
        self.aws_conn_id = aws_conn_id

    def poke(self, context: Any) -> PokeReturnValue:
        found = serving_anomalies(
            normalise_uri(self.log_uri), self.config, s3_client_factory(self.aws_conn_id)
        )
        metrics = found["metrics"]
        self.log.info(
            "%d recent requests: %s", metrics["recent_requests"], found["reasons"] or "ok"
        )
        if not found["anomalous"]:
            return PokeReturnValue(False)
        extra = {"reason": "serving_anomaly", **found}
        outlet_events = context.get("outlet_events") if hasattr(context, "get") else None
        if outlet_events is not None:
            outlet_events[self.asset].extra = extra
        return PokeReturnValue(True, extra)
