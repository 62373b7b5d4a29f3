"""ExplainabilityOperator and FairnessOperator against models registered in the session's MLflow."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import sha256_bytes
from mlsecops_provider.core.tracking.lineage import LineageRecorder, RunKey
from mlsecops_provider.core.tracking.registry import CHAMPION, log_and_register_sklearn
from mlsecops_provider.core.training.model import TrainingConfig, train_classifier
from mlsecops_provider.include.generator import LABEL, generate
from mlsecops_provider.operators._runtime import EVIDENCE_LINK_KEY
from tests.operators.fakes import FakeTaskInstance

STRONG = ("debt_to_income", "loan_amount", "annual_income", "credit_history_months")
POLICY = {
    "explainability": {"time_budget_seconds": 5.0, "max_rows": 300},
    "fairness": {"bootstrap_resamples": 200},
}


@pytest.fixture(scope="module")
def registered() -> dict[str, Any]:
    """``fair`` (champion) never sees ``sex``; ``biased`` takes it and learnt skewed labels."""
    from mlflow import MlflowClient

    settings = Settings.from_env()
    run = LineageRecorder(settings).run_for(RunKey("gates_setup", "setup"))
    train = with_sex(generate(3000, seed=31), 1)
    skewed = train.copy()
    women = (skewed["sex"] == "female").to_numpy()
    skewed.loc[women & (np.random.default_rng(0).random(len(skewed)) < 0.5), LABEL] = 1
    name = f"gates-{uuid.uuid4().hex[:6]}"
    out = {}
    for key, frame, categorical in (
        ("fair", train, ("employment_type",)),
        ("biased", skewed, ("employment_type", "sex")),
    ):
        config = TrainingConfig(LABEL, STRONG, categorical)
        model = train_classifier(frame, config).model
        example = frame[list(config.features)].head(5)
        out[key] = log_and_register_sklearn(settings, run, model, name, example).to_dict()
    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    client.set_registered_model_alias(name, CHAMPION, out["fair"]["version"])
    return out


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("gates_op")
    ref = write_table(with_sex(generate(1500, seed=32), 2), (root / "batch.parquet").as_uri())
    policy = root / "policy.yaml"
    policy.write_text(json.dumps({"gates": POLICY}))
    return {"ref": ref.to_dict(), "policy": str(policy), "root": root}


def explain_op(candidate: Any, batch: dict[str, Any], **kwargs: Any) -> Any:
    from mlsecops_provider.operators.explainability import ExplainabilityOperator

    args = {"dataset": batch["ref"], "label_column": LABEL, "policy_path": batch["policy"]}
    return ExplainabilityOperator(task_id="explain", candidate=candidate, **{**args, **kwargs})


def fairness_op(candidate: Any, batch: dict[str, Any], **kwargs: Any) -> Any:
    from mlsecops_provider.operators.fairness import FairnessOperator

    args = {"dataset": batch["ref"], "label_column": LABEL, "policy_path": batch["policy"],
            "sensitive_columns": ("sex",)}  # fmt: skip
    return FairnessOperator(task_id="fairness", candidate=candidate, **{**args, **kwargs})


def stored_report(ti: FakeTaskInstance, gate: str) -> dict[str, Any]:
    uri = ti.xcom[EVIDENCE_LINK_KEY]
    assert uri.endswith(f"/{gate}/report.json")
    return json.loads(Path(uri[len("file://") :]).read_text())


def mlflow_run(ti: FakeTaskInstance) -> Any:
    from mlflow import MlflowClient

    settings = Settings.from_env()
    run_id = LineageRecorder(settings).run_for(RunKey(ti.dag_id, ti.run_id))
    return MlflowClient(settings.tracking_uri).get_run(run_id), run_id


def with_sex(frame: Any, seed: int) -> Any:
    """The demo batch plus a sensitive attribute independent of everything else."""
    sex = np.random.default_rng(seed).choice(["female", "male"], len(frame))
    return frame.assign(sex=sex)


def test_explainability_passes_the_champion_and_stores_the_picture(
    registered: dict[str, Any], batch: dict[str, Any]
) -> None:
    from mlflow import MlflowClient

    ti = FakeTaskInstance(dag_id="gates_test")
    summary = explain_op(registered["fair"], batch, forbidden_features=("sex",)).execute({"ti": ti})
    assert summary["verdict"] == "pass"
    svg = Path(summary["svg_uri"][len("file://") :]).read_bytes()
    assert sha256_bytes(svg) == summary["svg_sha256"] and b"<svg" in svg
    details = stored_report(ti, "explainability")["details"]
    assert details["importance"][0]["feature"] == "debt_to_income"
    assert details["champion_status"] == "same"
    run, run_id = mlflow_run(ti)
    assert run.data.tags["mlsecops.gate.explainability"] == "pass"
    artifacts = MlflowClient(Settings.from_env().tracking_uri).list_artifacts(
        run_id, "gates/explainability"
    )
    assert [a.path for a in artifacts] == ["gates/explainability/explainability.svg"]


def test_explainability_fails_a_model_driven_by_a_forbidden_feature(
    registered: dict[str, Any], batch: dict[str, Any]
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    ti = FakeTaskInstance(dag_id="gates_test")
    with pytest.raises(AirflowFailException, match="forbidden feature 'sex'"):
        explain_op(registered["biased"], batch, forbidden_features=("sex",)).execute({"ti": ti})
    report = stored_report(ti, "explainability")
    assert report["result"]["verdict"] == "fail"
    assert report["details"]["drift"] is not None  # compared with the champion


def test_fairness_fails_the_biased_candidate_and_passes_the_fair_one(
    registered: dict[str, Any], batch: dict[str, Any]
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    ti = FakeTaskInstance(dag_id="gates_test")
    summary = fairness_op(registered["fair"], batch).execute({"ti": ti})
    assert summary["verdict"] == "pass", summary["message"]
    assert b"<svg" in Path(summary["svg_uri"][len("file://") :]).read_bytes()
    ti = FakeTaskInstance(dag_id="gates_test")
    with pytest.raises(AirflowFailException, match="equalized_odds_difference"):
        fairness_op(registered["biased"], batch).execute({"ti": ti})
    run, _ = mlflow_run(ti)
    assert run.data.tags["mlsecops.gate.fairness"] == "fail"


def test_fairness_joins_the_separate_evaluation_copy(
    registered: dict[str, Any], batch: dict[str, Any]
) -> None:
    from mlsecops_provider.core.data.datasets import read_table
    from mlsecops_provider.core.fairness.sensitive import evaluation_copy

    frame, _ = read_table(batch["ref"]["uri"])
    rows = write_table(frame.drop(columns=["sex"]), (batch["root"] / "rows.parquet").as_uri())
    copy = write_table(
        evaluation_copy(frame, "customer_id", ("sex",)), (batch["root"] / "s.parquet").as_uri()
    )
    ti = FakeTaskInstance(dag_id="gates_test")
    summary = fairness_op(
        registered["fair"], batch, dataset=rows.to_dict(), sensitive_dataset=copy.to_dict(),
        row_key="customer_id",
    ).execute({"ti": ti})  # fmt: skip
    assert summary["verdict"] == "pass"
    assert summary["subjects"]["sensitive_data"] == f"sha256:{copy.sha256}"


def test_fairness_bad_input_records_an_error(
    registered: dict[str, Any], batch: dict[str, Any]
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    ti = FakeTaskInstance(dag_id="gates_test")
    with pytest.raises(AirflowFailException, match="sensitive column 'gender' is not in"):
        fairness_op(registered["fair"], batch, sensitive_columns=("gender",)).execute({"ti": ti})
    assert stored_report(ti, "fairness")["result"]["verdict"] == "error"
