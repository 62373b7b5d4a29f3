"""BackdoorScanOperator: search the candidate for backdoor triggers; quarantine their rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlsecops_provider.core.tracking.registry import CHAMPION
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


class BackdoorScanOperator(MLSecOpsOperator):
    """Search the candidate for triggers (one to three features set to values inside or at
    the edge of their range) that send most rows of the other classes to one class; policy
    ``gates.backdoor_scan``. Each trigger at or above the success rate is judged against a
    reference (by default the model refit without the rows that carry it); an unexplained one
    fails the gate, and the training rows that carry it are written as a quarantine dataset.

    :param model: the train task's output or a model URI. Templated.
    :param dataset: the training data (dataset reference or URI). Templated.
    :param label_column: label column.
    :param champion_alias: registry alias of the champion (used with ``reference: champion``).
    :param champion_uri: the champion's model URI (default ``models:/<name>@<alias>``).
    :return: the gate summary, with ``quarantine`` (dataset reference) when rows were held.
    """

    template_fields: Sequence[str] = fields("model", "dataset", "champion_uri")
    ui_color = "#f3e8fb"

    def __init__(
        self,
        *,
        model: Any,
        dataset: Any,
        label_column: str,
        champion_alias: str = CHAMPION,
        champion_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.dataset = dataset
        self.label_column = label_column
        self.champion_alias = champion_alias
        self.champion_uri = champion_uri

    def execute(self, context: Any) -> dict[str, Any]:
        from mlsecops_provider.core.attacks.policy import BACKDOOR_GATE

        with self.gate_errors_recorded(context, BACKDOOR_GATE):
            return self._run(context)

    def _run(self, context: Any) -> dict[str, Any]:
        from mlsecops_provider.core.attacks import runner
        from mlsecops_provider.core.attacks.gate import backdoor_scan
        from mlsecops_provider.core.attacks.policy import BACKDOOR_GATE, BackdoorConfig
        from mlsecops_provider.core.settings import Settings

        policy = self.load_policy()
        config = policy.config(BACKDOOR_GATE, BackdoorConfig)
        frame, ref = runner.read_dataset(self.dataset, self.s3_factory)
        uri = runner.model_uri_of(self.model)
        champion = None
        if config.reference == "champion":
            champion = self.champion_uri or runner.champion_uri_of(
                self.model, uri, self.champion_alias
            )
        subjects = {"data": f"sha256:{ref.sha256}"}
        settings = Settings.from_env()
        result, details = runner.with_models(
            settings, policy, uri, champion,
            lambda cand, champ: backdoor_scan(
                frame, self.label_column, cand, champ, config, subjects
            ),
            first_model_ok=not self.champion_uri,
        )  # fmt: skip
        details["data"] = ref.to_dict()
        held = details["quarantined_row_positions"]
        if held:
            details["quarantine"] = self._quarantine(context, settings, frame.iloc[held])
        summary = self.record_gate(context, result, details)
        return {**summary, "quarantine": details.get("quarantine")}

    def _quarantine(self, context: Any, settings: Any, rows: Any) -> dict[str, Any]:
        from mlsecops_provider.core.attacks.policy import BACKDOOR_GATE
        from mlsecops_provider.core.data.datasets import write_table
        from mlsecops_provider.operators._runtime import run_key

        key = run_key(context)
        uri = settings.run_artifact_uri(key.dag_id, key.run_id, BACKDOOR_GATE, "quarantine.parquet")
        ref = write_table(rows.reset_index(drop=True), uri, s3_client_factory=self.s3_factory)
        self.log.info("Quarantined %d row(s) carrying a trigger: %s", len(rows), ref.uri)
        return ref.to_dict()
