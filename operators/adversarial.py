"""AdversarialOperator: evasion attacks on the candidate and the champion, on the same rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlsecops_provider.core.tracking.registry import CHAMPION
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


class AdversarialOperator(MLSecOpsOperator):
    """Attack the candidate and the champion with ART (black-box attack within a time budget,
    PGD transferred from a surrogate, the decision-tree attack where it applies) on the same
    rows; policy ``gates.adversarial`` (epsilon: L-inf in min-max-scaled feature units).

    Fails when the candidate's adversarial accuracy is below the champion's beyond the
    tolerance (or an opt-in absolute limit is crossed); a required attack that could not run
    is verdict ``error``. With no champion yet only the absolute limits (if any) apply.

    :param model: the train task's output or a model URI. Templated.
    :param dataset: the rows to attack (dataset reference or URI), e.g. the holdout. Templated.
    :param label_column: label column.
    :param champion_alias: registry alias of the champion (default ``champion``).
    :param champion_uri: the champion's model URI (default ``models:/<name>@<alias>``).
    :return: the gate summary.
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
        from mlsecops_provider.core.attacks.policy import ADVERSARIAL_GATE

        with self.gate_errors_recorded(context, ADVERSARIAL_GATE):
            return self._run(context)

    def _run(self, context: Any) -> dict[str, Any]:
        from mlsecops_provider.core.attacks import runner
        from mlsecops_provider.core.attacks.gate import adversarial
        from mlsecops_provider.core.attacks.policy import ADVERSARIAL_GATE, AdversarialConfig
        from mlsecops_provider.core.settings import Settings

        policy = self.load_policy()
        config = policy.config(ADVERSARIAL_GATE, AdversarialConfig)
        frame, ref = runner.read_dataset(self.dataset, self.s3_factory)
        uri = runner.model_uri_of(self.model)
        champion = self.champion_uri or runner.champion_uri_of(self.model, uri, self.champion_alias)
        subjects = {"data": f"sha256:{ref.sha256}"}
        result, details = runner.with_models(
            Settings.from_env(), policy, uri, champion,
            lambda cand, champ: adversarial(
                frame, self.label_column, cand, champ, config, subjects
            ),
            first_model_ok=not self.champion_uri,
        )  # fmt: skip
        details["data"] = ref.to_dict()
        return self.record_gate(context, result, details)
