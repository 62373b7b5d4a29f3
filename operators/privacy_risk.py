"""PrivacyRiskOperator: membership inference against the candidate before it ships."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlsecops_provider.core.tracking.registry import CHAMPION
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


class PrivacyRiskOperator(MLSecOpsOperator):
    """Attack the candidate with membership inference (ART black-box attack model and a
    loss-threshold attack) on its training rows and holdout rows; policy ``gates.privacy_risk``.

    Fails when the attack AUC's lower bound or the TPR at a low FPR is above the policy's
    limit, or when the candidate leaks more than the champion (when ``compare_champion``).
    A holdout that shares rows with the training data is bad input (verdict ``error``).

    :param model: the train task's output or a model URI. Templated.
    :param train_dataset: the training rows (dataset reference or URI). Templated.
    :param holdout_dataset: rows the model never saw (dataset reference or URI). Templated.
    :param label_column: label column.
    :param training_includes_holdout: the training dataset is the whole table the train task
        split; its holdout rows are removed (by row digest) before the attack.
    :param compare_champion: also attack the champion (``champion_uri``, default
        ``models:/<name>@<champion_alias>``) on the same rows.
    :return: the gate summary.
    """

    template_fields: Sequence[str] = fields("model", "train_dataset", "holdout_dataset")
    ui_color = "#f3e8fb"

    def __init__(
        self,
        *,
        model: Any,
        train_dataset: Any,
        holdout_dataset: Any,
        label_column: str,
        training_includes_holdout: bool = False,
        compare_champion: bool = False,
        champion_alias: str = CHAMPION,
        champion_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.train_dataset = train_dataset
        self.holdout_dataset = holdout_dataset
        self.label_column = label_column
        self.training_includes_holdout = training_includes_holdout
        self.compare_champion = compare_champion
        self.champion_alias = champion_alias
        self.champion_uri = champion_uri

    def execute(self, context: Any) -> dict[str, Any]:
        from mlsecops_provider.core.attacks.policy import PRIVACY_GATE

        with self.gate_errors_recorded(context, PRIVACY_GATE):
            return self._run(context)

    def _run(self, context: Any) -> dict[str, Any]:
        from mlsecops_provider.core.attacks import runner
        from mlsecops_provider.core.attacks.gate import privacy_risk
        from mlsecops_provider.core.attacks.policy import PRIVACY_GATE, PrivacyConfig
        from mlsecops_provider.core.settings import Settings

        policy = self.load_policy()
        config = policy.config(PRIVACY_GATE, PrivacyConfig)
        train, train_ref = runner.read_dataset(self.train_dataset, self.s3_factory)
        holdout, holdout_ref = runner.read_dataset(self.holdout_dataset, self.s3_factory)
        dropped = 0
        if self.training_includes_holdout:
            train, dropped = runner.drop_rows_of(train, holdout, self.label_column)
            self.log.info("Removed the %d holdout row(s) from the training table", dropped)
        uri = runner.model_uri_of(self.model)
        champion = None
        if self.compare_champion:
            champion = self.champion_uri or runner.champion_uri_of(
                self.model, uri, self.champion_alias
            )
        subjects = {
            "dataset:train": f"sha256:{train_ref.sha256}",
            "dataset:holdout": f"sha256:{holdout_ref.sha256}",
        }
        result, details = runner.with_models(
            Settings.from_env(), policy, uri, champion,
            lambda cand, champ: privacy_risk(
                train, holdout, self.label_column, cand, champ, config, subjects
            ),
            first_model_ok=not self.champion_uri,
        )  # fmt: skip
        details["data"] = {"train": train_ref.to_dict(), "holdout": holdout_ref.to_dict()}
        details["holdout_rows_removed_from_training_table"] = dropped
        return self.record_gate(context, result, details)
