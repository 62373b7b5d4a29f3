"""A registry with signed champions for the serving tests, built the way the DAG builds it.

Reuses the promotion tests' world (temporary MLflow store, keys, policy) and their
``run_promotion``; adds what serving needs on top: a model with a signature trained on a
DataFrame, its training dataset in lineage, and a model-scan report on the run.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.evidence import EvidenceStore
from mlsecops_provider.core.promotion.checks import Candidate
from mlsecops_provider.core.scan.gate import ModelScanConfig, scan_model
from mlsecops_provider.core.tracking.lineage import LineageRecorder
from mlsecops_provider.core.tracking.registry import download_model
from tests.core.promotion.test_promotion import World, run_promotion
from tests.core.serving.conftest import COLUMNS, fit, training_frame


@dataclass(frozen=True)
class Version:
    candidate: Candidate
    run_id: str


def register(world: World, name: str, seed: int, flip: bool = False) -> Version:
    """Train on a DataFrame, log with a signature, record the training data, register."""
    import mlflow

    mlflow.set_tracking_uri(world.settings.tracking_uri)
    train = training_frame(200, seed)
    model = fit(train, flip)
    with mlflow.start_run(experiment_id=world.experiment) as run:
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="skops",
            input_example=train[list(COLUMNS)].head(3),
            pip_requirements=["scikit-learn"],
        )
    uri = f"{world.settings.artifact_uri}/train-{name}-{seed}.parquet"
    ref = write_table(train, uri)
    lineage = LineageRecorder(world.settings)
    lineage.log_dataset(run.info.run_id, train, ref, name="training", context="training")
    version = mlflow.register_model(info.model_uri, name)
    return Version(Candidate(name, str(version.version), str(version.source)), run.info.run_id)


def scan(world: World, version: Version, dag_run: str) -> None:
    """The model-scan gate's report in the evidence store and its tags on the run."""
    store = EvidenceStore(world.settings.evidence_uri)
    with tempfile.TemporaryDirectory() as tmp:
        local = download_model(world.settings, version.candidate.source_uri, tmp)
        result = scan_model(local, ModelScanConfig(use_modelscan=False))
    stored = store.put_report("secure_training", dag_run, result, {})
    LineageRecorder(world.settings).log_gate(version.run_id, stored)


def promote(world: World, version: Version, dag_run: str) -> None:
    result, _ = run_promotion(world, version.candidate, dag_run)
    assert result.verdict.value == "pass", result.message


def build_registry(world: World, name: str) -> dict[str, Any]:
    """v1 then v2 promoted (v1 previous champion), v3 scanned as shadow, v4 not scanned."""
    versions = [register(world, name, seed) for seed in (1, 2, 3)]
    versions.append(register(world, name, 4, flip=True))
    promote(world, versions[0], f"{name}-run-1")
    promote(world, versions[1], f"{name}-run-2")
    scan(world, versions[2], f"{name}-run-3")
    world.client.set_registered_model_alias(name, "shadow", versions[2].candidate.version)
    return {"name": name, "versions": versions}
