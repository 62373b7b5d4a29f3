"""Lineage as the training DAG leaves it, written with the real MLflow client for tests."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from mlsecops_provider.core.data.datasets import DatasetRef
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.lineage import LineageRecorder, RunKey
from mlsecops_provider.core.tracking.registry import CHAMPION


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def log_training_run(
    settings: Settings, experiment: str, frame: Any, ref: DatasetRef, context: str = "training"
) -> str:
    """An MLflow run in ``experiment`` that logged ``ref`` as a dataset input; its run id."""
    lineage = LineageRecorder(settings)
    run_id = lineage.run_for(RunKey(experiment, unique("run")))
    lineage.log_dataset(run_id, frame, ref, name=context, context=context, targets="default")
    return run_id


def register_champion(settings: Settings, model_name: str, run_id: str, model_dir: Path) -> str:
    """A registered model version from ``run_id`` that carries the champion alias."""
    client = LineageRecorder(settings).client
    model_dir.mkdir(parents=True, exist_ok=True)
    client.create_registered_model(model_name)
    version = client.create_model_version(model_name, model_dir.as_uri(), run_id=run_id)
    client.set_registered_model_alias(model_name, CHAMPION, version.version)
    return str(version.version)
