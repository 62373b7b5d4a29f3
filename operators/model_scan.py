"""ModelScanOperator: scan a model's files for code execution before it is registered."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from mlsecops_provider.core.scan.gate import GATE, ModelScanConfig, scan_model, scan_uri
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.registry import download_model
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


class ModelScanOperator(MLSecOpsOperator):
    """Scan every file of a model: our pickle scanner, format checks by content, and modelscan.

    A file that cannot be parsed, an unknown format, or a file modelscan skipped that our
    scanner did not validate is verdict ``error`` (fail closed); a finding at or above the
    policy's ``fail_on_severity`` is ``fail``.

    :param model: an MLflow model URI (``models:/...``, ``runs:/...``), a ``file://`` or
        ``s3://`` URI, or the training task's output (its ``model_uri`` is scanned). Templated.
    :return: the gate summary.
    """

    template_fields: Sequence[str] = fields("model")
    ui_color = "#fbe9e7"

    def __init__(
        self,
        *,
        model: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model = model

    def execute(self, context: Any) -> dict[str, Any]:
        with self.gate_errors_recorded(context, GATE):
            config = self.load_policy().config(GATE, ModelScanConfig)
            uri = self._uri()
            self.log.info("Scanning %s", uri)
            if uri.startswith(("file://", "s3://")):
                result = scan_uri(uri, config, self.s3_factory)
            else:
                with tempfile.TemporaryDirectory(prefix="mlsecops-scan-") as tmp:
                    local = download_model(Settings.from_env(), uri, tmp)
                    result = scan_model(local, config)
            return self.record_gate(context, result, {"model_uri": uri})

    def _uri(self) -> str:
        if isinstance(self.model, Mapping):
            return str(self.model.get("model_uri") or self.model["source_uri"])
        return str(self.model)
