"""FairnessOperator: for whom the candidate model fails, with intervals, against the champion."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Any

from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.registry import CHAMPION
from mlsecops_provider.operators.base import MLSecOpsOperator, fields
from mlsecops_provider.operators.explainability import (
    candidate_model_uri,
    champion_model_uri,
    read_dataset,
    store_picture,
)


class FairnessOperator(MLSecOpsOperator):
    """Per-group metrics (Fairlearn) and disparities with bootstrap intervals, as a gate.

    The sensitive columns come from ``sensitive_dataset`` when given: the separate,
    access-limited evaluation copy (row key + sensitive columns), digest-verified and joined to
    the evaluation rows by ``row_key``; only those columns are kept from it, and a copy of a
    sensitive column in the evaluation rows is replaced by the evaluation copy's. Rules from
    the policy section ``gates.fairness``; the JSON report and an SVG of the per-group rates
    with intervals are stored as evidence (the SVG also in the run's MLflow run).

    :param candidate: the train task's output (``{name, version, model_uri, ...}``) or a URI.
    :param dataset: the evaluation rows: a dataset reference from an upstream task or a URI.
    :param label_column: label column.
    :param sensitive_columns: the sensitive columns (default: the policy's
        ``sensitive_features``).
    :param sensitive_dataset: the evaluation copy holding them (reference or URI); None: they
        are read from ``dataset``.
    :param row_key: the join key (default: the policy's ``row_key``).
    :param champion_alias: registry alias of the champion (default ``champion``).
    :param champion_uri: the champion's model URI (default ``models:/<candidate name>@<alias>``).
    :return: the gate summary, with ``svg_uri`` and ``svg_sha256``.
    """

    template_fields: Sequence[str] = fields(
        "candidate", "dataset", "sensitive_dataset", "champion_uri"
    )
    ui_color = "#f6eef8"

    def __init__(
        self,
        *,
        candidate: Any,
        dataset: Any,
        label_column: str,
        sensitive_columns: Sequence[str] = (),
        sensitive_dataset: Any = None,
        row_key: str | None = None,
        champion_alias: str = CHAMPION,
        champion_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.candidate = candidate
        self.dataset = dataset
        self.label_column = label_column
        self.sensitive_columns = tuple(sensitive_columns)
        self.sensitive_dataset = sensitive_dataset
        self.row_key = row_key
        self.champion_alias = champion_alias
        self.champion_uri = champion_uri

    def execute(self, context: Any) -> dict[str, Any]:
        from mlsecops_provider.core.fairness.config import GATE

        with self.gate_errors_recorded(context, GATE):
            return self._evaluate(context)

    def _evaluate(self, context: Any) -> dict[str, Any]:
        from mlsecops_provider.core.fairness.config import FairnessConfig
        from mlsecops_provider.core.fairness.gate import fairness_gate
        from mlsecops_provider.core.fairness.report import render_svg
        from mlsecops_provider.core.shadow.models import load_pair

        config = FairnessConfig.from_policy(self.load_policy())
        columns = self.sensitive_columns or config.sensitive_features
        settings = Settings.from_env()
        frame, ref = read_dataset(self.dataset, self.s3_factory, self.log)
        subjects = {"data": f"sha256:{ref.sha256}"}
        if self.sensitive_dataset:
            frame = self._join(frame, columns, config.row_key, subjects)
        candidate_uri = candidate_model_uri(self.candidate)
        champion_uri = self.champion_uri or champion_model_uri(
            self.candidate, candidate_uri, self.champion_alias
        )
        with tempfile.TemporaryDirectory(prefix="mlsecops-fairness-") as workdir:
            candidate, champion = load_pair(
                settings, candidate_uri, champion_uri, workdir, config.trusted_types,
                first_model_ok=not self.champion_uri,
            )  # fmt: skip
            result, details = fairness_gate(
                frame, self.label_column, columns, candidate, champion, config, subjects
            )
        details["data"] = ref.to_dict()
        picture = store_picture(context, result, details, render_svg(details), self.aws_conn_id)
        summary = self.record_gate(context, result, details)
        return {**summary, **picture}

    def _join(
        self, frame: Any, columns: tuple[str, ...], default_key: str | None, subjects: dict
    ) -> Any:
        from mlsecops_provider.core.errors import ConfigError
        from mlsecops_provider.core.fairness.sensitive import join_sensitive

        key = self.row_key or default_key
        if not key:
            raise ConfigError("sensitive_dataset needs row_key (or gates.fairness.row_key)")
        sensitive, sensitive_ref = read_dataset(self.sensitive_dataset, self.s3_factory, self.log)
        sensitive = sensitive[[c for c in (key, *columns) if c in sensitive.columns]]
        subjects["sensitive_data"] = f"sha256:{sensitive_ref.sha256}"
        present = [c for c in columns if c in frame.columns]
        if present:
            self.log.info("Sensitive column(s) %s taken from the evaluation copy", present)
            frame = frame.drop(columns=present)
        return join_sensitive(frame, sensitive, key, columns)
