"""ExplainabilityOperator: what drives the candidate model, and did it move from the champion."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlsecops_provider.core.data.datasets import DatasetRef, dataset_from_xcom, read_table
from mlsecops_provider.core.errors import ConfigError
from mlsecops_provider.core.evidence import GateResult
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.shadow.models import parse_model_uri
from mlsecops_provider.core.storage import normalise_uri
from mlsecops_provider.core.tracking.registry import CHAMPION
from mlsecops_provider.operators._runtime import evidence_store, run_key
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


class ExplainabilityOperator(MLSecOpsOperator):
    """Explain a candidate model (SHAP) and the registry's champion on the same rows.

    Global attributions per input column (mean |SHAP|, share), explanation drift from the
    champion, forbidden features, features with ~zero attribution; rules from the policy
    section ``gates.explainability``. The JSON report and an SVG of the importance bars are
    stored as evidence (the SVG also as an artifact of the run's MLflow run).

    :param candidate: the train task's output (``{name, version, model_uri, ...}``) or a URI.
    :param dataset: dataset reference from an upstream task (``{uri, sha256, ...}``) or a URI.
    :param label_column: label column.
    :param forbidden_features: columns that must not drive the model (added to the policy's).
    :param champion_alias: registry alias of the champion (default ``champion``).
    :param champion_uri: the champion's model URI (default ``models:/<candidate name>@<alias>``).
    :return: the gate summary, with ``svg_uri`` and ``svg_sha256``.
    """

    template_fields: Sequence[str] = fields("candidate", "dataset", "champion_uri")
    ui_color = "#eef6e8"

    def __init__(
        self,
        *,
        candidate: Any,
        dataset: Any,
        label_column: str,
        forbidden_features: Sequence[str] = (),
        champion_alias: str = CHAMPION,
        champion_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.candidate = candidate
        self.dataset = dataset
        self.label_column = label_column
        self.forbidden_features = tuple(forbidden_features)
        self.champion_alias = champion_alias
        self.champion_uri = champion_uri

    def execute(self, context: Any) -> dict[str, Any]:
        from mlsecops_provider.core.explain.config import GATE

        with self.gate_errors_recorded(context, GATE):
            return self._explain(context)

    def _explain(self, context: Any) -> dict[str, Any]:
        from mlsecops_provider.core.explain.config import ExplainConfig
        from mlsecops_provider.core.explain.gate import explain_gate
        from mlsecops_provider.core.explain.report import render_svg
        from mlsecops_provider.core.shadow.models import load_pair

        config = ExplainConfig.from_policy(self.load_policy())
        settings = Settings.from_env()
        frame, ref = read_dataset(self.dataset, self.s3_factory, self.log)
        candidate_uri = candidate_model_uri(self.candidate)
        champion_uri = self.champion_uri or champion_model_uri(
            self.candidate, candidate_uri, self.champion_alias
        )
        with tempfile.TemporaryDirectory(prefix="mlsecops-explain-") as workdir:
            candidate, champion = load_pair(
                settings, candidate_uri, champion_uri, workdir, config.trusted_types,
                first_model_ok=not self.champion_uri,
            )  # fmt: skip
            result, details = explain_gate(
                frame, self.label_column, candidate, champion, config,
                self.forbidden_features, {"data": f"sha256:{ref.sha256}"},
            )  # fmt: skip
        details["data"] = ref.to_dict()
        picture = store_picture(context, result, details, render_svg(details), self.aws_conn_id)
        summary = self.record_gate(context, result, details)
        return {**summary, **picture}


def store_picture(
    context: Any, result: GateResult, details: dict[str, Any], svg: str, aws_conn_id: str | None
) -> dict[str, str]:
    """The gate's SVG into the evidence store and the run's MLflow run; its URI into details."""
    from mlsecops_provider.core.tracking.lineage import LineageRecorder

    settings = Settings.from_env()
    key = run_key(context)
    store = evidence_store(aws_conn_id, settings)
    ref = store.put_bytes(
        store.uri_for(key.dag_id, key.run_id, result.gate, f"{result.gate}.svg"),
        svg.encode(),
        "image/svg+xml",
    )
    lineage = LineageRecorder(settings)
    with tempfile.TemporaryDirectory(prefix="mlsecops-svg-") as folder:
        path = Path(folder, f"{result.gate}.svg")
        path.write_text(svg, encoding="utf-8")
        lineage.log_evidence(lineage.run_for(key), str(path), f"gates/{result.gate}")
    details["svg"] = {"uri": ref.uri, "sha256": ref.sha256}
    return {"svg_uri": ref.uri, "svg_sha256": ref.sha256}


def read_dataset(dataset: Any, factory: Any, log: Any) -> tuple[Any, DatasetRef]:
    """A dataset reference from XCom (digest verified) or a URI."""
    if isinstance(dataset, Mapping):
        expected = dataset_from_xcom(dict(dataset))
        frame, ref = read_table(expected.uri, expected.sha256, factory)
        log.info("Verified %s (sha256 %s, %d rows)", ref.uri, ref.sha256, ref.rows)
        return frame, ref
    if isinstance(dataset, str) and dataset:
        return read_table(normalise_uri(dataset), None, factory)
    raise ConfigError(f"dataset: expected a dataset reference or a URI, got {dataset!r:.200}")


def candidate_model_uri(candidate: Any) -> str:
    """The model URI of the train task's output (or the URI itself)."""
    if isinstance(candidate, Mapping):
        uri = candidate.get("model_uri")
        if not uri and candidate.get("name") and candidate.get("version"):
            uri = f"models:/{candidate['name']}/{candidate['version']}"
        if not uri:
            raise ConfigError(f"candidate: no model_uri in {dict(candidate)!r:.200}")
        return str(uri)
    if isinstance(candidate, str) and candidate:
        return candidate
    raise ConfigError("candidate: expected a model URI or the train task's output")


def champion_model_uri(candidate: Any, candidate_uri: str, alias: str) -> str:
    """``models:/<registered name>@<alias>`` of the candidate's registered model."""
    name = parse_model_uri(candidate_uri).name
    if isinstance(candidate, Mapping) and candidate.get("name"):
        name = str(candidate["name"])
    if not name:
        raise ConfigError(f"candidate {candidate_uri} is not a registered model: pass champion_uri")
    return f"models:/{name}@{alias}"
