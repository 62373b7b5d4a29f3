"""ProvenanceOperator: digests of data, code, environment and model as SLSA provenance."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlsecops_provider.core.data.datasets import dataset_from_xcom
from mlsecops_provider.core.provenance.gate import GATE, provenance_gate
from mlsecops_provider.core.provenance.slsa import RunInfo, statement_bytes
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.lineage import LineageRecorder, RunKey
from mlsecops_provider.core.tracking.registry import download_model, tag_version
from mlsecops_provider.operators._runtime import (
    evidence_store,
    run_key,
)
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


def default_code_paths() -> list[str]:
    """The DAGs folder of this deployment and the provider's ``include`` assets."""
    import mlsecops_provider.include as include

    dags = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER")
    paths = [dags] if dags and Path(dags).is_dir() else []
    return [*paths, str(Path(include.__file__).parent)]


def builder_id() -> str:
    """``MLSECOPS_BUILDER_ID``, else the API server's base URL, else this host."""
    explicit = os.environ.get("MLSECOPS_BUILDER_ID") or os.environ.get("AIRFLOW__API__BASE_URL")
    return explicit or f"airflow://{socket.getfqdn()}"


class ProvenanceOperator(MLSecOpsOperator):
    """Hash the model and every input, re-verify the datasets, write SLSA provenance.

    The statement (in-toto Statement v1, SLSA Provenance v1 predicate) is stored as evidence,
    logged to the DAG run's MLflow run, and the model version is tagged with the model's
    digest, which equals the root digest OpenSSF model-signing computes for the same files.

    :param model: the registered model from the training task (``{name, version, source_uri}``).
    :param datasets: ``{name: dataset reference}`` of every dataset the model came from.
    :param gate_results: the summaries of the gates that ran before (their reports become
        byproducts of the statement).
    :param code_paths: folders whose digest stands for the code (default: DAGs and include).
    :return: the gate summary, with ``model_sha256`` and ``statement_uri``.
    """

    template_fields: Sequence[str] = fields("model", "datasets", "gate_results")
    ui_color = "#eef6e9"

    def __init__(
        self,
        *,
        model: Any,
        datasets: Any,
        gate_results: Any = (),
        code_paths: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.datasets = datasets
        self.gate_results = gate_results
        self.code_paths = list(code_paths) if code_paths else None

    def execute(self, context: Any) -> dict[str, Any]:
        with self.gate_errors_recorded(context, GATE):
            return self._provenance(context)

    def _provenance(self, context: Any) -> dict[str, Any]:
        settings = Settings.from_env()
        key = run_key(context)
        datasets = {n: dataset_from_xcom(r) for n, r in dict(self.datasets).items()}
        dag_run = context.get("dag_run")
        started = getattr(dag_run, "start_date", None) or datetime.now(UTC)
        run = RunInfo.for_dag_run(builder_id(), key.dag_id, key.run_id, started, datetime.now(UTC))
        external = {
            "dag_conf": dict(getattr(dag_run, "conf", None) or {}),
            "hyperparameters": dict(self.model.get("hyperparameters") or {}),
        }
        with tempfile.TemporaryDirectory(prefix="mlsecops-model-") as tmp:
            model_dir = download_model(settings, str(self.model["source_uri"]), tmp)
            self.log.info("Hashing model %s v%s", self.model["name"], self.model["version"])
            result, details = provenance_gate(
                model_dir,
                f"{self.model['name']}/{self.model['version']}",
                datasets,
                [g for g in self.gate_results or () if g],
                run,
                external_parameters=external,
                code_paths=self.code_paths or default_code_paths(),
                s3_client_factory=self.s3_factory,
            )
        statement_uri = self._store_statement(settings, key, details["statement"])
        model_sha256 = result.subjects["model"]
        tag_version(
            settings,
            str(self.model["name"]),
            str(self.model["version"]),
            {"mlsecops.model_sha256": model_sha256, "mlsecops.provenance_uri": statement_uri},
        )
        summary = self.record_gate(context, result, details)
        return {**summary, "model_sha256": model_sha256, "statement_uri": statement_uri}

    def _store_statement(self, settings: Settings, key: RunKey, statement: Any) -> str:
        """The statement on its own, in the evidence store and as an MLflow artifact."""
        store = evidence_store(self.aws_conn_id, settings)
        data = statement_bytes(statement)
        uri = store.uri_for(key.dag_id, key.run_id, GATE, "provenance.intoto.json")
        ref = store.put_bytes(uri, data)
        lineage = LineageRecorder(settings)
        mlflow_run = lineage.run_for(key)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "provenance.intoto.json"
            path.write_bytes(data)
            lineage.log_evidence(mlflow_run, str(path), "mlsecops")
        lineage.set_tags(mlflow_run, {"mlsecops.provenance_sha256": ref.sha256})
        self.log.info("Provenance statement %s (sha256 %s)", ref.uri, ref.sha256)
        return ref.uri
