"""The three attack operators on a model registered in the session's MLflow."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.data.datasets import read_table, write_table
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.lineage import LineageRecorder, RunKey
from mlsecops_provider.core.tracking.registry import log_and_register_sklearn
from mlsecops_provider.core.training.model import TrainingConfig, train_classifier
from mlsecops_provider.include.generator import LABEL, generate
from mlsecops_provider.operators._runtime import EVIDENCE_LINK_KEY
from tests.operators.fakes import FakeTaskInstance

FEATURES = ("debt_to_income", "loan_amount", "annual_income", "credit_history_months")
FAST = {
    "privacy_risk": {"bootstrap_resamples": 200},
    "adversarial": {"time_budget_seconds": 1.0, "min_black_box_rows": 3, "chunk_rows": 3,
                    "max_iter": 3, "transfer_rows": 150},
    "backdoor_scan": {"max_evaluations": 60000, "rows_per_class": 100},
}  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A registered candidate, the whole table it was split from, its holdout, a policy."""
    root = tmp_path_factory.mktemp("attack_ops")
    settings = Settings.from_env()
    run = LineageRecorder(settings).run_for(RunKey("attack_setup", "setup"))
    table = generate(1200, seed=31)
    config = TrainingConfig(LABEL, FEATURES, ("employment_type",))
    outcome = train_classifier(table, config)
    name = f"attacks-{uuid.uuid4().hex[:6]}"
    example = table[list(config.features)].head(5)
    model = log_and_register_sklearn(settings, run, outcome.model, name, example).to_dict()
    whole = write_table(table, (root / "whole.parquet").as_uri())
    holdout = table.loc[outcome.holdout_index].reset_index(drop=True)
    held = write_table(holdout, (root / "holdout.parquet").as_uri())
    policy = root / "policy.yaml"
    policy.write_text(json.dumps({"gates": FAST}))
    return {"model": model, "whole": whole.to_dict(), "holdout": held.to_dict(),
            "policy": str(policy)}  # fmt: skip


def report(ti: FakeTaskInstance, gate: str) -> dict[str, Any]:
    uri = ti.xcom[EVIDENCE_LINK_KEY]
    assert uri.endswith(f"/{gate}/report.json")
    return json.loads(Path(uri[len("file://") :]).read_text())


def test_privacy_risk_operator_removes_the_holdout_from_the_table(setup: dict) -> None:
    from mlsecops_provider.operators.privacy_risk import PrivacyRiskOperator

    ti = FakeTaskInstance(dag_id="attack_test")
    summary = PrivacyRiskOperator(
        task_id="privacy_risk", model=setup["model"], train_dataset=setup["whole"],
        holdout_dataset=setup["holdout"], training_includes_holdout=True,
        label_column=LABEL, policy_path=setup["policy"],
    ).execute({"ti": ti})  # fmt: skip
    assert summary["verdict"] == "pass", summary["message"]
    assert summary["subjects"]["dataset:train"] == f"sha256:{setup['whole']['sha256']}"
    details = report(ti, "privacy_risk")["details"]
    assert details["holdout_rows_removed_from_training_table"] == 300


def test_privacy_risk_operator_records_an_error_for_an_overlap(setup: dict) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from mlsecops_provider.operators.privacy_risk import PrivacyRiskOperator

    ti = FakeTaskInstance(dag_id="attack_test")
    op = PrivacyRiskOperator(
        task_id="privacy_risk", model=setup["model"], train_dataset=setup["whole"],
        holdout_dataset=setup["holdout"], label_column=LABEL, policy_path=setup["policy"],
    )  # fmt: skip
    with pytest.raises(AirflowFailException, match="shares 300 row"):
        op.execute({"ti": ti})
    assert report(ti, "privacy_risk")["result"]["verdict"] == "error"


def test_adversarial_and_backdoor_operators(setup: dict) -> None:
    from mlsecops_provider.operators.adversarial import AdversarialOperator
    from mlsecops_provider.operators.backdoor_scan import BackdoorScanOperator

    ti = FakeTaskInstance(dag_id="attack_test")
    summary = AdversarialOperator(
        task_id="adversarial", model=setup["model"], dataset=setup["holdout"],
        label_column=LABEL, policy_path=setup["policy"],
    ).execute({"ti": ti})  # fmt: skip
    assert summary["verdict"] == "pass", summary["message"]  # no champion yet, no limit
    assert "candidate.transfer.adversarial_accuracy" in summary["metrics"]
    ti = FakeTaskInstance(dag_id="attack_test")
    summary = BackdoorScanOperator(
        task_id="backdoor_scan", model=setup["model"], dataset=setup["whole"],
        label_column=LABEL, policy_path=setup["policy"],
    ).execute({"ti": ti})  # fmt: skip
    assert summary["verdict"] == "pass", summary["message"]
    assert summary["quarantine"] is None
    assert report(ti, "backdoor_scan")["details"]["search"]["evaluations"] > 0
    assert read_table(setup["whole"]["uri"])[0].shape[0] == 1200
