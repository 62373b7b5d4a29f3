"""Lineage in MLflow: one run per DAG run, datasets with digests, gate verdicts, evidence.

The run is found by its tags (``mlsecops.dag_id`` and ``mlsecops.run_id``) in the
experiment named after the DAG, and created on first use, so every task of a DAG run,
on any worker, writes to the same MLflow run.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mlsecops_provider.core.data.datasets import DatasetRef
from mlsecops_provider.core.errors import LineageError
from mlsecops_provider.core.evidence import GateResult
from mlsecops_provider.core.settings import Settings

CREATE_SETTLE_SECONDS = 1.5  # longer than a run takes to be stored after its start is stamped
TAG_SHA256 = "mlsecops.sha256"  # dataset input tags: what lineage readers match on
TAG_URI = "mlsecops.uri"
TAG_CONTEXT = "mlflow.data.context"

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

log = logging.getLogger(__name__)
TAG_DAG_ID = "mlsecops.dag_id"
TAG_RUN_ID = "mlsecops.run_id"
TAG_TRY = "mlsecops.try_number"
TAG_GATE_PREFIX = "mlsecops.gate."
MLFLOW_DIGEST_LEN = 32  # MLflow keeps at most 36 characters of a dataset digest


def check_tracking_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """Fail fast, with one line naming the URI, when an HTTP tracking server does not answer."""
    if urlparse(tracking_uri).scheme not in ("http", "https"):
        return
    import requests

    try:
        requests.get(tracking_uri.rstrip("/") + "/health", timeout=timeout).raise_for_status()
    except requests.RequestException as err:
        raise LineageError(f"MLflow tracking server {tracking_uri} is unreachable ({err})") from err


@dataclass(frozen=True)
class RunKey:
    """Which DAG run a record belongs to."""

    dag_id: str
    run_id: str
    try_number: int | None = None


class LineageRecorder:
    """Writes the lineage of one DAG run into its MLflow run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: MlflowClient | None = None

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            check_tracking_reachable(self.settings.tracking_uri)
            self._client = MlflowClient(self.settings.tracking_uri, self.settings.registry_uri)
        return self._client

    def experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = self.settings.mlflow_artifact_root if self.settings.tracking_is_local else None
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except MlflowException:  # created meanwhile by a concurrent task
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def run_for(self, key: RunKey) -> str:
        """The MLflow run id of this DAG run, created on first use."""
        try:
            return self._find_or_create_run(key)
        except LineageError:
            raise
        except Exception as err:  # MLflow raises many types for an unusable store
            raise LineageError(
                f"MLflow at {self.settings.tracking_uri} refused the run for "
                f"{key.dag_id}/{key.run_id} ({type(err).__name__}: {err})"
            ) from err

    def _find_or_create_run(self, key: RunKey) -> str:
        experiment_id = self.experiment_id(key.dag_id)
        found = self._first_run(experiment_id, key)
        if found is None:
            tags = {TAG_DAG_ID: key.dag_id, TAG_RUN_ID: key.run_id}
            created = str(
                self.client.create_run(experiment_id, tags=tags, run_name=key.run_id).info.run_id
            )
            # Two tasks of one DAG run may create a run at once: the oldest one wins. The
            # start time is stamped by the client before the run is stored, so a run stamped
            # earlier may become visible later: wait until both are stored, then decide.
            time.sleep(CREATE_SETTLE_SECONDS)
            found = self._first_run(experiment_id, key)
            run_id = found[0] if found else created
            if run_id != created:
                self.client.delete_run(created)
            else:
                log.info("Opened MLflow run %s for %s/%s", run_id, key.dag_id, key.run_id)
        else:
            run_id, started = found
            if time.time() * 1000 - started < 2000 * CREATE_SETTLE_SECONDS:
                # a run that young may still lose to one being created: decide after it
                time.sleep(CREATE_SETTLE_SECONDS)
                found = self._first_run(experiment_id, key)
                run_id = found[0] if found else run_id
        if key.try_number is not None:
            self._set_tag(run_id, TAG_TRY, str(key.try_number))
        return run_id

    def _set_tag(self, run_id: str, key: str, value: str) -> None:
        """``set_tag``, retried: two tasks setting a new tag at once can make MLflow's SQL
        store insert it twice (a unique-key violation); the retry updates it instead."""
        _retried(lambda: self.client.set_tag(run_id, key, value))

    def _first_run(self, experiment_id: str, key: RunKey) -> tuple[str, int] | None:
        """The oldest run of this DAG run and its start time (ms); ties broken by run id."""
        query = f"tags.`{TAG_DAG_ID}` = '{key.dag_id}' and tags.`{TAG_RUN_ID}` = '{key.run_id}'"
        runs = self.client.search_runs(
            [experiment_id], query, max_results=50, order_by=["attributes.start_time ASC"]
        )
        if not runs:
            return None
        first = min(runs, key=lambda r: (r.info.start_time, r.info.run_id))
        return str(first.info.run_id), int(first.info.start_time)

    def log_dataset(
        self,
        mlflow_run_id: str,
        frame: pd.DataFrame,
        ref: DatasetRef,
        *,
        name: str,
        context: str,
        targets: str | None = None,
    ) -> None:
        """Log a dataset input with its digest (the full SHA-256 goes into an input tag);
        ``frame`` may be a sample of the rows (the profile then gives ``ref.rows``)."""
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.pandas_dataset import PandasDataset
        from mlflow.entities import DatasetInput, InputTag

        source = resolve_dataset_source(ref.uri)
        dataset = PandasDataset(
            frame, source, targets=targets, name=name, digest=ref.sha256[:MLFLOW_DIGEST_LEN]
        )
        tags = [
            InputTag(TAG_CONTEXT, context),
            InputTag(TAG_SHA256, ref.sha256),
            InputTag(TAG_URI, ref.uri),
        ]
        entity = dataset._to_mlflow_entity()
        if ref.rows != len(frame):  # ``frame`` is a sample of a streamed dataset: its true shape
            from mlflow.entities import Dataset

            profile = {"num_rows": ref.rows, "num_elements": ref.rows * len(frame.columns)}
            entity = Dataset(entity.name, entity.digest, entity.source_type, entity.source,
                             entity.schema, json.dumps(profile))  # fmt: skip
        # two runs logging the same new dataset at once: one insert loses on the dataset's
        # unique key; the retry finds the dataset stored and links it
        _retried(lambda: self.client.log_inputs(mlflow_run_id, [DatasetInput(entity, tags)]))

    def log_gate(self, mlflow_run_id: str, result: GateResult) -> None:
        """Verdict as a tag, numeric metrics under the gate's name, the report URI as a tag."""
        from mlflow.entities import Metric, RunTag

        prefix = f"{TAG_GATE_PREFIX}{result.gate}"
        tags = [RunTag(prefix, result.verdict.value)]
        if result.evidence_uri:
            tags.append(RunTag(f"{prefix}.evidence_uri", result.evidence_uri))
            tags.append(RunTag(f"{prefix}.evidence_sha256", result.evidence_sha256 or ""))
        metrics = [
            Metric(f"{result.gate}.{k}", float(v), _now_ms(), 0)
            for k, v in result.metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        self.client.log_batch(mlflow_run_id, metrics=metrics, tags=tags)

    def log_evidence(self, mlflow_run_id: str, local_path: str, artifact_path: str) -> None:
        self.client.log_artifact(mlflow_run_id, local_path, artifact_path)

    def set_tags(self, mlflow_run_id: str, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self._set_tag(mlflow_run_id, key, str(value))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _retried(call: Callable[[], object], attempts: int = 3) -> None:
    """Run an MLflow write, retried after a short pause (a lost insert race)."""
    for attempt in range(attempts):
        try:
            call()
            return
        except Exception:  # MLflow raises RestException or MlflowException here
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
