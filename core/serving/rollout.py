"""Steps of the shadow rollout: a registered candidate and its lineage; the shadow alias.

:func:`set_shadow` moves the ``shadow`` alias only to a version whose run carries a passing
model-scan report for its exact digest (the same check ``mlsecops serve`` makes before it
loads a shadow), so the rollout cannot put an unscanned model on production traffic.
"""

from __future__ import annotations

from typing import Any

from mlsecops_provider.core.errors import LineageError
from mlsecops_provider.core.serving.loading import Loader
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import S3ClientFactory


def candidate(
    settings: Settings, name: str, version: str, s3: S3ClientFactory | None = None
) -> dict[str, Any]:
    """``{name, version, source_uri, model_uri, mlflow_run_id, datasets}`` of a version."""
    from mlflow import MlflowClient

    from mlsecops_provider.core.tracking.datasets import dataset_inputs
    from mlsecops_provider.core.tracking.lineage import TAG_CONTEXT, TAG_SHA256, TAG_URI

    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    try:
        found = client.get_model_version(name, str(version))
        inputs = dataset_inputs(client.get_run(found.run_id)) if found.run_id else []
    except Exception as err:  # MLflow raises many types for a missing version or run
        raise LineageError(f"cannot read {name} v{version} and its run: {err}") from err
    datasets = {
        str(tags[TAG_CONTEXT]): {"uri": tags[TAG_URI], "sha256": tags[TAG_SHA256]}
        for tags in inputs
        if tags.get(TAG_CONTEXT) == "training" and tags.get(TAG_URI) and tags.get(TAG_SHA256)
    }
    if not datasets:
        raise LineageError(f"{name} v{version} has no training dataset in its MLflow run")
    from mlsecops_provider.core.data.datasets import read_table

    refs = {
        context: read_table(ref["uri"], ref["sha256"], s3)[1].to_dict()  # digest verified
        for context, ref in datasets.items()
    }
    return {
        "name": name,
        "version": str(found.version),
        "source_uri": str(found.source),
        "model_uri": f"models:/{name}/{found.version}",
        "mlflow_run_id": found.run_id,
        "datasets": refs,
    }


def set_shadow(
    settings: Settings,
    name: str,
    version: str,
    alias: str = "shadow",
    s3: S3ClientFactory | None = None,
) -> dict[str, str]:
    """Point ``name@alias`` at ``version`` after checking its scan; returns its digest."""
    loader = Loader(settings, b"", s3=s3)
    _, digest = loader.read_files(name, version)
    loader.check_scan(name, version, digest)
    loader.client.set_registered_model_alias(name, alias, version)
    return {"name": name, "version": version, "alias": alias, "sha256": digest}
