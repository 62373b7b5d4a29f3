"""Log a model into the DAG run's MLflow run, register it, and read or move aliases."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import LineageError
from mlsecops_provider.core.settings import Settings

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

log = logging.getLogger(__name__)
CHAMPION = "champion"


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model version and where its artifacts are."""

    name: str
    version: str
    model_uri: str
    source_uri: str
    mlflow_run_id: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _use(settings: Settings) -> Any:
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    if settings.registry_uri:
        mlflow.set_registry_uri(settings.registry_uri)
    return mlflow


def log_sklearn(
    settings: Settings, mlflow_run_id: str, model: Any, input_example: pd.DataFrame
) -> str:
    """Log a model in the skops format (no pickle) to the run; return its ``models:/`` URI."""
    mlflow = _use(settings)
    try:
        with mlflow.start_run(run_id=mlflow_run_id):
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                serialization_format="skops",
                input_example=input_example,
                pip_requirements=["scikit-learn", "pandas", "skops"],
            )
    except mlflow.exceptions.MlflowException as err:
        raise LineageError(f"MLflow refused the model of run {mlflow_run_id}: {err}") from err
    log.info("Logged model %s to MLflow run %s", info.model_uri, mlflow_run_id)
    return str(info.model_uri)


def register_model(
    settings: Settings,
    model_uri: str,
    registered_model_name: str,
    mlflow_run_id: str,
    tags: dict[str, str] | None = None,
) -> RegisteredModel:
    """Register a logged model as a new version of ``registered_model_name``."""
    mlflow = _use(settings)
    try:
        version = mlflow.register_model(model_uri, registered_model_name, tags=tags)
    except mlflow.exceptions.MlflowException as err:
        raise LineageError(f"MLflow refused model {registered_model_name!r}: {err}") from err
    log.info("Registered %s version %s from %s", registered_model_name, version.version, model_uri)
    return RegisteredModel(
        name=registered_model_name,
        version=str(version.version),
        model_uri=f"models:/{registered_model_name}/{version.version}",
        source_uri=str(version.source),
        mlflow_run_id=mlflow_run_id,
    )


def log_and_register_sklearn(
    settings: Settings,
    mlflow_run_id: str,
    model: Any,
    registered_model_name: str,
    input_example: pd.DataFrame,
    tags: dict[str, str] | None = None,
) -> RegisteredModel:
    """:func:`log_sklearn` then :func:`register_model` (no gate in between: for tests, tools)."""
    uri = log_sklearn(settings, mlflow_run_id, model, input_example)
    return register_model(settings, uri, registered_model_name, mlflow_run_id, tags)


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version an alias points at, or None when the alias is not set."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as err:
        if "RESOURCE_DOES_NOT_EXIST" in str(err.error_code) or "not found" in str(err).lower():
            return None
        raise LineageError(f"cannot read alias {alias!r} of model {name!r}: {err}") from err


def download_model(settings: Settings, model_uri: str, destination: str) -> str:
    """Fetch a model's artifacts (``models:/``, ``runs:/``, file:// or s3://) into a folder."""
    mlflow = _use(settings)
    try:
        return str(mlflow.artifacts.download_artifacts(model_uri, dst_path=destination))
    except Exception as err:  # MLflow raises many types for a missing or unreadable model
        raise LineageError(f"cannot download model {model_uri}: {err}") from err


def tag_version(settings: Settings, name: str, version: str, tags: dict[str, str]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
