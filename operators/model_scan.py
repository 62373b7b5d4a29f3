"""ModelScanOperator: scan a model's files for code execution before it is registered."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator

from mlsecops_provider.core.model_scan import GATE, ModelScanConfig, scan_model, scan_uri
from mlsecops_provider.core.policy import load_policy
from mlsecops_provider.core.registry import download_model
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.operators._runtime import (
    gate_errors_recorded,
    record_gate,
    s3_client_factory,
)
from mlsecops_provider.operators.links import EvidenceLink


class ModelScanOperator(BaseOperator):
    """Scan every file of a model: our pickle scanner, format checks by content, and modelscan.

    A file that cannot be parsed, an unknown format, or a file modelscan skipped that our
    scanner did not validate is verdict ``error`` (fail closed); a finding at or above the
    policy's ``fail_on_severity`` is ``fail``.

    :param model: an MLflow model URI (``models:/...``, ``runs:/...``), a ``file://`` or
        ``s3://`` URI, or the training task's output (its ``model_uri`` is scanned). Templated.
    :param policy_path: policy YAML (section ``gates.model_scan``); None: the default.
    :param aws_conn_id: Airflow AWS connection for ``s3://`` URIs.
    :return: the gate summary.
    """

    template_fields: Sequence[str] = ("model", "policy_path")
    operator_extra_links = (EvidenceLink(),)
    ui_color = "#fbe9e7"

    def __init__(
        self,
        *,
        model: Any,
        policy_path: str | None = None,
        aws_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.policy_path = policy_path
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        with gate_errors_recorded(context, GATE, aws_conn_id=self.aws_conn_id):
            config = load_policy(self.policy_path or None).config(GATE, ModelScanConfig)
            uri = self._uri()
            self.log.info("Scanning %s", uri)
            if uri.startswith(("file://", "s3://")):
                result = scan_uri(uri, config, s3_client_factory(self.aws_conn_id))
            else:
                with tempfile.TemporaryDirectory(prefix="mlsecops-scan-") as tmp:
                    local = download_model(Settings.from_env(), uri, tmp)
                    result = scan_model(local, config)
            return record_gate(context, result, {"model_uri": uri}, aws_conn_id=self.aws_conn_id)

    def _uri(self) -> str:
        if isinstance(self.model, Mapping):
            return str(self.model.get("model_uri") or self.model["source_uri"])
        return str(self.model)
