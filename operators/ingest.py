"""DatasetIngestOperator: bring a dataset version into the run's artifact store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlsecops_provider.core.data.ingest import ingest_copy
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import normalise_uri
from mlsecops_provider.core.tracking.lineage import LineageRecorder
from mlsecops_provider.operators._lineage import operator_lineage
from mlsecops_provider.operators._runtime import bad_input_fails_task, run_key
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


class DatasetIngestOperator(MLSecOpsOperator):
    """Copy a dataset (CSV or Parquet, ``file://`` or ``s3://``) into the run's artifact store.

    The copy is byte-identical; its SHA-256 is the digest every later task verifies, and the
    dataset is logged to the DAG run's MLflow run with it.

    :param source_uri: where the dataset version is (URI or absolute path). Templated.
    :param source_sha256: expected digest of the source; a mismatch fails the task.
    :param dataset_name: the name used in the artifact store and in MLflow.
    :param label_column: label column, recorded as the MLflow dataset's targets.
    :return: the dataset reference ``{uri, sha256, rows, columns, format}``.
    """

    template_fields: Sequence[str] = fields("source_uri", "source_sha256", "dataset_name")
    operator_extra_links = ()  # no gate report: no evidence link to show
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        source_uri: str,
        source_sha256: str | None = None,
        dataset_name: str = "raw",
        label_column: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_uri = source_uri
        self.source_sha256 = source_sha256
        self.dataset_name = dataset_name
        self.label_column = label_column

    def execute(self, context: Any) -> dict[str, Any]:
        with bad_input_fails_task():
            return self._ingest(context)

    def _ingest(self, context: Any) -> dict[str, Any]:
        settings = Settings.from_env()
        source = normalise_uri(self.source_uri)
        key = run_key(context)
        done = ingest_copy(
            source,
            self.source_sha256 or None,
            lambda fmt: settings.run_artifact_uri(
                key.dag_id, key.run_id, "data", f"{self.dataset_name}.{fmt}"
            ),
            self.s3_factory,
        )
        ref = done.target
        self._lineage = ([done.source], [ref])
        lineage = LineageRecorder(settings)
        mlflow_run = lineage.run_for(key)
        lineage.log_dataset(
            mlflow_run, done.sample, ref, name=self.dataset_name, context="raw",
            targets=self.label_column,
        )  # fmt: skip
        self.log.info(
            "Ingested %s -> %s: %d rows x %d columns, sha256 %s (MLflow run %s)",
            source,
            ref.uri,
            ref.rows,
            len(ref.columns),
            ref.sha256,
            mlflow_run,
        )
        return ref.to_dict()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs and outputs with their digests, for Airflow's OpenLineage provider."""
        return operator_lineage(*getattr(self, "_lineage", ((), ())))
