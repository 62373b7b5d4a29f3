"""The datasets MLflow runs logged: the read side of lineage (digests already trained on).

Any context counts: ``raw`` is logged at ingest, so a version being trained on right now is
not new again.
"""

from __future__ import annotations

from typing import Any

from mlsecops_provider.core.errors import LineageError
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.lineage import (
    TAG_SHA256,
    check_tracking_reachable,
)

DEFAULT_LOOKBACK_RUNS = 20


def _experiment_runs(client: Any, experiment_name: str, lookback: int) -> list[Any]:
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    return list(
        client.search_runs(
            [experiment.experiment_id],
            order_by=["attributes.start_time DESC"],
            max_results=lookback,
        )
    )


def dataset_inputs(run: Any) -> list[dict[str, str]]:
    """The dataset inputs of an MLflow run as dicts of their input tags."""
    inputs = run.inputs.dataset_inputs if run.inputs else []
    return [{t.key: t.value for t in i.tags} for i in inputs]


def known_digests(
    settings: Settings,
    experiment_name: str,
    lookback_runs: int = DEFAULT_LOOKBACK_RUNS,
) -> set[str]:
    """SHA-256 of every dataset the last ``lookback_runs`` runs of the experiment logged."""
    from mlflow import MlflowClient

    check_tracking_reachable(settings.tracking_uri)
    try:
        client = MlflowClient(settings.tracking_uri, settings.registry_uri)
        runs = _experiment_runs(client, experiment_name, lookback_runs)
    except Exception as err:  # MLflow raises many types for an unusable store
        raise LineageError(
            f"cannot read the lineage of {experiment_name!r} from MLflow at "
            f"{settings.tracking_uri} ({type(err).__name__}: {err})"
        ) from err
    return {tags[TAG_SHA256] for run in runs for tags in dataset_inputs(run) if TAG_SHA256 in tags}
