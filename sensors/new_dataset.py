"""NewDatasetSensor: wait for a dataset version that has not been trained on yet."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from mlsecops_provider.connections import s3_client_factory
from mlsecops_provider.core.data.versions import DEFAULT_SUFFIXES, VersionWatcher
from mlsecops_provider.core.errors import StorageError
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import normalise_uri
from mlsecops_provider.core.tracking.datasets import DEFAULT_LOOKBACK_RUNS, known_digests
from mlsecops_provider.sensors.triggers.new_dataset import NewDatasetTrigger


def _default_deferrable() -> bool:
    from airflow.sdk.configuration import conf

    return conf.getboolean("operators", "default_deferrable", fallback=False)


class NewDatasetSensor(BaseSensorOperator):
    """Wait until the newest dataset version at a prefix is one not trained on yet.

    The newest object (last modified) under ``prefix_uri`` is new when its SHA-256 is not
    among the datasets the training DAG's recent MLflow runs logged (lineage): a new object
    or a changed one (other ETag, other bytes). Its digest goes to XCom so that the training
    run can verify it reads the same bytes.

    :param prefix_uri: ``file://`` or ``s3://`` prefix, or one object. Templated.
    :param training_dag_id: DAG whose MLflow experiment holds the lineage. Templated.
    :param suffixes: file name suffixes that count as datasets.
    :param lookback_runs: how many recent training runs count as "trained on".
    :param aws_conn_id: Airflow AWS connection for ``s3://`` (None: boto3's defaults).
    :param deferrable: wait in the triggerer (:class:`NewDatasetTrigger`) between checks.
    :return: ``{uri, sha256}`` of the new version.
    """

    template_fields: Sequence[str] = ("prefix_uri", "training_dag_id")
    ui_color = "#e8f6ef"

    def __init__(
        self,
        *,
        prefix_uri: str,
        training_dag_id: str = "secure_training",
        suffixes: Sequence[str] = DEFAULT_SUFFIXES,
        lookback_runs: int = DEFAULT_LOOKBACK_RUNS,
        aws_conn_id: str | None = None,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prefix_uri = prefix_uri
        self.training_dag_id = training_dag_id
        self.suffixes = tuple(suffixes)
        self.lookback_runs = lookback_runs
        self.aws_conn_id = aws_conn_id
        self.deferrable = _default_deferrable() if deferrable is None else deferrable

    @cached_property
    def watcher(self) -> VersionWatcher:
        """Built after templating; keeps the digest cache across pokes of one try."""
        factory = s3_client_factory(self.aws_conn_id)
        return VersionWatcher(normalise_uri(self.prefix_uri), self.suffixes, factory)

    def trained_digests(self) -> set[str]:
        return known_digests(Settings.from_env(), self.training_dag_id, self.lookback_runs)

    def poke(self, context: Any) -> PokeReturnValue:
        found = self.watcher.check(self.trained_digests())
        return PokeReturnValue(found is not None, found.to_xcom() if found else None)

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        return self._check_or_defer()

    def _check_or_defer(self) -> dict[str, str]:
        trained = self.trained_digests()
        found = self.watcher.check(trained)
        if found is not None:
            return found.to_xcom()
        self.defer(
            trigger=NewDatasetTrigger(
                prefix_uri=self.watcher.prefix_uri,
                known_sha256=sorted(trained),
                suffixes=self.suffixes,
                aws_conn_id=self.aws_conn_id,
                poke_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, str]:
        """Resume after the trigger fired; re-check lineage (it may have trained meanwhile)."""
        if event.get("status") != "success":
            raise StorageError(f"watching {self.prefix_uri} failed: {event.get('message')}")
        if event["sha256"] in self.trained_digests():
            self.log.info("%s was trained on while waiting; waiting again", event["uri"])
            return self._check_or_defer()
        self.log.info("New dataset version %s (sha256 %s)", event["uri"], event["sha256"])
        return {"uri": event["uri"], "sha256": event["sha256"]}
