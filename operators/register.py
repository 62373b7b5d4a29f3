"""RegisterModelOperator: a scanned, evaluated candidate becomes a registered model version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.registry import register_model
from mlsecops_provider.operators._runtime import bad_input_fails_task, run_key
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


class RegisterModelOperator(MLSecOpsOperator):
    """Register the logged candidate as a new version, tagged with its run and its gates.

    Put it downstream of the gates that must pass before a model enters the registry
    (model scan, shadow evaluation): a failed gate fails its task and this one never runs.
    The alias does not move here; only the signed promotion gate moves it.

    :param model: the training task's output (``{name, model_uri, mlflow_run_id, ...}``).
    :param gate_results: summaries of the gates that passed; their verdicts become tags.
    :return: ``{name, version, model_uri, source_uri, mlflow_run_id}`` plus the training
        output's ``hyperparameters`` and ``metrics``.
    """

    template_fields: Sequence[str] = fields("model", "gate_results")
    operator_extra_links = ()  # no gate report: no evidence link to show
    ui_color = "#fdf2e3"

    def __init__(self, *, model: Any, gate_results: Any = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.gate_results = gate_results

    def execute(self, context: Any) -> dict[str, Any]:
        with bad_input_fails_task():
            key = run_key(context)
            tags = {
                "mlsecops.dag_id": key.dag_id,
                "mlsecops.run_id": key.run_id,
                "mlsecops.dataset_sha256": str(self.model.get("dataset_sha256", "")),
            }
            for summary in self.gate_results or ():
                if summary and summary.get("gate"):
                    tags[f"mlsecops.gate.{summary['gate']}"] = str(summary.get("verdict"))
            registered = register_model(
                Settings.from_env(),
                str(self.model["model_uri"]),
                str(self.model["name"]),
                str(self.model["mlflow_run_id"]),
                tags,
            )
        self.log.info("Registered %s version %s", registered.name, registered.version)
        return {
            **registered.to_dict(),
            "hyperparameters": self.model.get("hyperparameters", {}),
            "metrics": self.model.get("metrics", {}),
        }
