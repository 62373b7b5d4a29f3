"""ShadowWarmupGateOperator: the shadow against the champion on logged production traffic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from mlsecops_provider.core.serving.warmup import GATE, WarmupConfig, warmup_gate
from mlsecops_provider.core.storage import normalise_uri
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


class ShadowWarmupGateOperator(MLSecOpsOperator):
    """Gate ``shadow_warmup`` over the prediction log ``mlsecops serve`` wrote.

    Agreement rate, prediction PSI, latency p50/p99 ratios, error and fallback rates and,
    with ``labels_uri``, accuracy on delayed labels joined by request id; thresholds from the
    policy's ``gates.shadow_warmup``. Too little traffic fails with "not enough traffic"; a
    log whose chain or batch digests do not verify is verdict ``error``. The report names the
    shadow's model digest as its subject, so the promotion gate can require this gate.

    :param log_uri: the prediction log (``file://`` or ``s3://``). Templated.
    :param labels_uri: delayed labels (``request_id``, optionally ``row``, label). Templated.
    :param shadow_version: the shadow version to judge (default: the latest in the log).
    :param min_requests: override the policy's ``min_requests``.
    :return: the gate summary.
    """

    template_fields: Sequence[str] = fields("log_uri", "labels_uri", "shadow_version")
    ui_color = "#eaf4fb"

    def __init__(
        self,
        *,
        log_uri: str,
        labels_uri: str | None = None,
        shadow_version: str | None = None,
        min_requests: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.log_uri = log_uri
        self.labels_uri = labels_uri
        self.shadow_version = shadow_version
        self.min_requests = min_requests

    def execute(self, context: Any) -> dict[str, Any]:
        with self.gate_errors_recorded(context, GATE):
            config = self.load_policy().config(GATE, WarmupConfig)
            if self.min_requests is not None:
                config = replace(config, min_requests=self.min_requests)
            result = warmup_gate(
                normalise_uri(self.log_uri),
                config,
                labels_uri=normalise_uri(self.labels_uri) if self.labels_uri else None,
                shadow_version=str(self.shadow_version) if self.shadow_version else None,
                s3=self.s3_factory,
            )
            return self.record_gate(context, result, {"log_uri": self.log_uri})
