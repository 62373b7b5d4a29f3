"""SklearnTrainOperator: train on a verified dataset and log the model to the MLflow run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from mlsecops_provider.core.data.datasets import dataset_from_xcom, read_table, write_table
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.lineage import LineageRecorder
from mlsecops_provider.core.tracking.registry import log_sklearn
from mlsecops_provider.core.training.model import TrainingConfig, train_classifier
from mlsecops_provider.operators._lineage import operator_lineage
from mlsecops_provider.operators._runtime import bad_input_fails_task, run_key
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


class SklearnTrainOperator(MLSecOpsOperator):
    """Train a scikit-learn classifier and log it (not yet registered) to the DAG run's run.

    The dataset is read through its URI and its digest is verified first (verify-on-read):
    bytes changed since the upstream task recorded them fail the task. The model is logged
    in the skops format (no pickle); it becomes a registered version only after the model
    scan and the shadow evaluation (:class:`RegisterModelOperator`). The holdout rows are
    written as a dataset so that the shadow evaluation scores unseen rows.

    :param dataset: dataset reference from an upstream task (``{uri, sha256, ...}``, or a gate's
        output carrying one under ``dataset``).
    :param label_column: label column.
    :param numeric_features: numeric feature columns.
    :param categorical_features: categorical feature columns (one-hot encoded).
    :param registered_model_name: the registered model this candidate is for.
    :param hyperparameters: LogisticRegression keyword arguments.
    :return: ``{name, model_uri, source_uri, mlflow_run_id, metrics, hyperparameters,
        dataset_sha256, holdout}``.
    """

    template_fields: Sequence[str] = fields("dataset", "registered_model_name", "hyperparameters")
    operator_extra_links = ()  # no gate report: no evidence link to show
    ui_color = "#fdf2e3"

    def __init__(
        self,
        *,
        dataset: Any,
        label_column: str,
        numeric_features: Sequence[str],
        categorical_features: Sequence[str] = (),
        registered_model_name: str,
        hyperparameters: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.label_column = label_column
        self.numeric_features = tuple(numeric_features)
        self.categorical_features = tuple(categorical_features)
        self.registered_model_name = registered_model_name
        self.hyperparameters = hyperparameters

    def execute(self, context: Any) -> dict[str, Any]:
        with bad_input_fails_task():
            return self._train(context)

    def _train(self, context: Any) -> dict[str, Any]:
        settings = Settings.from_env()
        expected = dataset_from_xcom(self.dataset)
        frame, ref = read_table(expected.uri, expected.sha256, self.s3_factory)
        self.log.info("Verified %s (sha256 %s, %d rows)", ref.uri, ref.sha256, ref.rows)
        config = TrainingConfig(
            label=self.label_column,
            numeric_features=self.numeric_features,
            categorical_features=self.categorical_features,
        )
        if self.hyperparameters:
            config = replace(config, hyperparameters=dict(self.hyperparameters))
        outcome = train_classifier(frame, config)
        self.log.info(
            "Trained on %d rows, holdout %d: %s",
            outcome.train_rows,
            outcome.test_rows,
            outcome.metrics,
        )
        lineage = LineageRecorder(settings)
        key = run_key(context)
        mlflow_run = lineage.run_for(key)
        lineage.log_dataset(
            mlflow_run, frame, ref, name="training", context="training", targets=self.label_column
        )
        lineage.client.log_batch(
            mlflow_run,
            metrics=[_metric(f"train.{k}", v) for k, v in outcome.metrics.items()],
            params=[_param(k, v) for k, v in config.hyperparameters.items()],
        )
        model_uri = log_sklearn(
            settings, mlflow_run, outcome.model, frame[list(config.features)].head(5)
        )
        holdout_uri = settings.run_artifact_uri(key.dag_id, key.run_id, "data", "holdout.parquet")
        holdout = write_table(
            frame.loc[outcome.holdout_index].reset_index(drop=True),
            holdout_uri,
            s3_client_factory=self.s3_factory,
        )
        self.log.info("Logged %s; holdout rows at %s", model_uri, holdout.uri)
        self._lineage = ([ref], [holdout])
        context["ti"].xcom_push(key="holdout", value=holdout.to_dict())  # train.output["holdout"]
        return {
            "name": self.registered_model_name,
            "model_uri": model_uri,
            "source_uri": model_uri,
            "mlflow_run_id": mlflow_run,
            "metrics": outcome.metrics,
            "hyperparameters": dict(config.hyperparameters),
            "dataset_sha256": ref.sha256,
            "holdout": holdout.to_dict(),
        }

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs and outputs with their digests, for Airflow's OpenLineage provider."""
        return operator_lineage(*getattr(self, "_lineage", ((), ())))


def _metric(key: str, value: float) -> Any:
    import time

    from mlflow.entities import Metric

    return Metric(key, value, int(time.time() * 1000), 0)


def _param(key: str, value: Any) -> Any:
    from mlflow.entities import Param

    return Param(key, str(value))
