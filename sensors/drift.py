"""DriftSensor: fire when recent production data drifted from the champion's training data."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from mlsecops_provider.connections import s3_client_factory
from mlsecops_provider.core.data.versions import DEFAULT_SUFFIXES, VersionWatcher
from mlsecops_provider.core.policy import load_policy
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import normalise_uri
from mlsecops_provider.core.tracking.datasets import DEFAULT_LOOKBACK_RUNS, known_digests
from mlsecops_provider.core.tracking.registry import CHAMPION
from mlsecops_provider.core.validation.drift import DriftConfig, drift_against_champion


class DriftSensor(BaseSensorOperator):
    """Compare recent production data with the champion model's training data.

    The current data is ``current_uri`` itself or the newest dataset under it. The reference
    is found through MLflow lineage (champion alias -> version -> run -> ``training`` input)
    and read with digest verification. The statistics and thresholds are the validation
    gate's drift screen (PSI, KS) from the policy; the sensor fires when at least
    ``gates.drift.min_drifted_columns`` columns drifted. Data the training DAG already
    ingested (by digest, through lineage) does not fire again. Runs on a worker (pandas,
    scipy): use ``mode="reschedule"`` for long waits.

    :param current_uri: production data: ``file://`` / ``s3://`` object or prefix. Templated.
    :param model_name: registered model whose champion is the reference. Templated.
    :param policy_path: policy YAML (default: the shipped policy). Templated.
    :param label_column: label column, left out of the drift screen.
    :param exclude_columns: more columns to leave out (IDs, free text, PII).
    :param alias: registry alias of the reference model (default ``champion``).
    :param training_dag_id: DAG whose lineage says what was trained on (None: no check).
    :param aws_conn_id: Airflow AWS connection for ``s3://`` (None: boto3's defaults).
    :return: ``{uri, sha256, reason: "drift", drifted_columns, missing_columns, max_psi, psi,
        reference, ...}`` (the report's summary).
    """

    template_fields: Sequence[str] = ("current_uri", "model_name", "policy_path")
    ui_color = "#fbeee6"

    def __init__(
        self,
        *,
        current_uri: str,
        model_name: str,
        policy_path: str | None = None,
        label_column: str | None = None,
        exclude_columns: Sequence[str] = (),
        alias: str = CHAMPION,
        training_dag_id: str | None = "secure_training",
        suffixes: Sequence[str] = DEFAULT_SUFFIXES,
        lookback_runs: int = DEFAULT_LOOKBACK_RUNS,
        aws_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.current_uri = current_uri
        self.model_name = model_name
        self.policy_path = policy_path
        self.label_column = label_column
        self.exclude_columns = tuple(exclude_columns)
        self.alias = alias
        self.training_dag_id = training_dag_id
        self.suffixes = tuple(suffixes)
        self.lookback_runs = lookback_runs
        self.aws_conn_id = aws_conn_id

    @cached_property
    def config(self) -> DriftConfig:
        policy = load_policy(self.policy_path or None)
        return DriftConfig.from_policy(policy).with_columns(self.label_column, self.exclude_columns)

    @cached_property
    def watcher(self) -> VersionWatcher:
        factory = s3_client_factory(self.aws_conn_id)
        return VersionWatcher(normalise_uri(self.current_uri), self.suffixes, factory)

    def poke(self, context: Any) -> bool | PokeReturnValue:
        settings = Settings.from_env()
        current = self.watcher.newest()
        if current is None:
            self.log.info("No production data under %s yet", self.watcher.prefix_uri)
            return False
        if self.training_dag_id and current.sha256 in known_digests(
            settings, self.training_dag_id, self.lookback_runs
        ):
            self.log.info("%s is already trained on (or being trained on)", current.uri)
            return False
        report = drift_against_champion(
            settings,
            self.model_name,
            current.uri,
            self.config,
            current_sha256=current.sha256,
            s3_client_factory=self.watcher.s3_client_factory,
            alias=self.alias,
        )
        for column in report.drifted_columns:
            self.log.info("  drifted: %s %s", column, report.columns.get(column))
        if not report.drifted:
            return False
        summary = report.summary()
        return PokeReturnValue(True, {**current.to_xcom(), "reason": "drift", **summary})
