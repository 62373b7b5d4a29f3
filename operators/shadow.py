"""ShadowEvaluationOperator: the candidate model against the champion on the same rows."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from mlsecops_provider.core.data.datasets import DatasetRef, dataset_from_xcom, read_table
from mlsecops_provider.core.errors import ConfigError
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.shadow.gate import shadow_evaluate
from mlsecops_provider.core.shadow.models import load_pair, parse_model_uri
from mlsecops_provider.core.shadow.policy import GATE, ShadowConfig
from mlsecops_provider.core.shadow.report import render_html
from mlsecops_provider.core.storage import normalise_uri
from mlsecops_provider.core.tracking.registry import CHAMPION
from mlsecops_provider.operators._runtime import (
    evidence_store,
    run_key,
)
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


class ShadowEvaluationOperator(MLSecOpsOperator):
    """Shadow-evaluate a candidate model against the registry's champion on one dataset.

    Both models predict the same rows (read through their URI, digest verified when the
    dataset is a reference from an upstream task). Thresholds come from the policy section
    ``gates.shadow_evaluation``; without one, the candidate fails when its primary metric is
    worse than the champion's beyond the paired bootstrap interval. With no champion yet, or
    when the candidate is the champion, only value thresholds apply and the report says so.
    The JSON report and an HTML page are stored as evidence.

    :param candidate: the train task's output (``{name, version, model_uri, ...}``) or a model
        URI (``models:/name/3``, ``runs:/...``).
    :param dataset: dataset reference from an upstream task (``{uri, sha256, ...}``) or a URI.
    :param label_column: label column.
    :param champion_alias: registry alias of the champion (default ``champion``).
    :param champion_uri: the champion's model URI (default ``models:/<candidate name>@<alias>``).
    :return: the gate summary, with ``html_uri`` and ``html_sha256``.
    """

    template_fields: Sequence[str] = fields("candidate", "dataset", "champion_uri")
    ui_color = "#e6f0fb"

    def __init__(
        self,
        *,
        candidate: Any,
        dataset: Any,
        label_column: str,
        champion_alias: str = CHAMPION,
        champion_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.candidate = candidate
        self.dataset = dataset
        self.label_column = label_column
        self.champion_alias = champion_alias
        self.champion_uri = champion_uri

    def execute(self, context: Any) -> dict[str, Any]:
        with self.gate_errors_recorded(context, GATE):
            return self._evaluate(context)

    def _evaluate(self, context: Any) -> dict[str, Any]:
        config = ShadowConfig.from_policy(self.load_policy())
        settings = Settings.from_env()
        frame, ref = self._read_dataset()
        candidate_uri = self._candidate_uri()
        champion_uri = self.champion_uri or self._default_champion_uri(candidate_uri)
        self.log.info("Candidate %s, champion %s, data %s", candidate_uri, champion_uri, ref.uri)
        with tempfile.TemporaryDirectory(prefix="mlsecops-shadow-") as workdir:
            candidate, champion = load_pair(
                settings,
                candidate_uri,
                champion_uri,
                workdir,
                config.trusted_types,
                first_model_ok=not self.champion_uri,  # the candidate's own, not yet registered
            )
            result, details = shadow_evaluate(
                frame, self.label_column, candidate, champion, config,
                {"data": f"sha256:{ref.sha256}"},
            )  # fmt: skip
        details["data"] = ref.to_dict()
        key = run_key(context)
        store = evidence_store(self.aws_conn_id, settings)
        page = store.put_bytes(
            store.uri_for(key.dag_id, key.run_id, GATE, "report.html"),
            render_html(result, details).encode(),
            "text/html",
        )
        self.log.info("HTML report %s (sha256 %s)", page.uri, page.sha256)
        details["html"] = {"uri": page.uri, "sha256": page.sha256}
        summary = self.record_gate(context, result, details)
        return {**summary, "html_uri": page.uri, "html_sha256": page.sha256}

    def _read_dataset(self) -> tuple[Any, DatasetRef]:
        factory = self.s3_factory
        if isinstance(self.dataset, Mapping):
            expected = dataset_from_xcom(dict(self.dataset))
            frame, ref = read_table(expected.uri, expected.sha256, factory)
            self.log.info("Verified %s (sha256 %s, %d rows)", ref.uri, ref.sha256, ref.rows)
            return frame, ref
        if isinstance(self.dataset, str) and self.dataset:
            return read_table(normalise_uri(self.dataset), None, factory)
        raise ConfigError(f"dataset: expected a dataset reference or a URI, got {self.dataset!r}")

    def _candidate_uri(self) -> str:
        if isinstance(self.candidate, Mapping):
            uri = self.candidate.get("model_uri")
            if not uri and self.candidate.get("name") and self.candidate.get("version"):
                uri = f"models:/{self.candidate['name']}/{self.candidate['version']}"
            if not uri:
                raise ConfigError(f"candidate: no model_uri in {dict(self.candidate)!r:.200}")
            return str(uri)
        if isinstance(self.candidate, str) and self.candidate:
            return self.candidate
        raise ConfigError("candidate: expected a model URI or the train task's output")

    def _default_champion_uri(self, candidate_uri: str) -> str:
        name = parse_model_uri(candidate_uri).name
        if isinstance(self.candidate, Mapping) and self.candidate.get("name"):
            name = str(self.candidate["name"])
        if not name:
            raise ConfigError(
                f"candidate {candidate_uri} is not a registered model: pass champion_uri"
            )
        return f"models:/{name}@{self.champion_alias}"
