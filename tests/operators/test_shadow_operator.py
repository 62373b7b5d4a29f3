"""ShadowEvaluationOperator against models registered in the session's MLflow (SQLite)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

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
FAST = {"bootstrap_resamples": 200, "robustness": {"samples": 50, "random_trials": 4}}


@pytest.fixture(scope="module")
def registered() -> dict[str, Any]:
    """``fresh``: one version, no champion; ``name``: v1 strong (champion), v2 weak."""
    from mlflow import MlflowClient

    settings = Settings.from_env()
    run = LineageRecorder(settings).run_for(RunKey("shadow_setup", "setup"))
    train = generate(3000, seed=21)
    out: dict[str, Any] = {}
    suffix = uuid.uuid4().hex[:6]
    for key, features in (("fresh", STRONG), ("v1", STRONG), ("v2", ("age",))):
        name = f"shadow-{'fresh' if key == 'fresh' else 'main'}-{suffix}"
        config = TrainingConfig(LABEL, features, ("employment_type",))
        model = train_classifier(train, config).model
        example = train[list(config.features)].head(5)
        out[key] = log_and_register_sklearn(settings, run, model, name, example).to_dict()
    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    client.set_registered_model_alias(out["v1"]["name"], CHAMPION, out["v1"]["version"])
    return out


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("shadow_op")
    ref = write_table(generate(1500, seed=22), (root / "batch.parquet").as_uri())
    policy = root / "policy.yaml"
    policy.write_text(json.dumps({"gates": {"shadow_evaluation": FAST}}))
    return {"ref": ref.to_dict(), "policy": str(policy), "root": root}


def operator(candidate: Any, batch: dict[str, Any], **kwargs: Any) -> Any:
    from mlsecops_provider.operators.shadow import ShadowEvaluationOperator

    args = {"dataset": batch["ref"], "label_column": LABEL, "policy_path": batch["policy"]}
    return ShadowEvaluationOperator(task_id="shadow", candidate=candidate, **{**args, **kwargs})


def stored_report(ti: FakeTaskInstance) -> dict[str, Any]:
    uri = ti.xcom[EVIDENCE_LINK_KEY]
    assert uri.startswith("file://") and uri.endswith("/shadow_evaluation/report.json")
    return json.loads(Path(uri[len("file://") :]).read_text())


def test_first_model_without_champion_passes_on_values(
    registered: dict[str, Any], batch: dict[str, Any]
) -> None:
    ti = FakeTaskInstance(dag_id="shadow_test")
    summary = operator(registered["fresh"], batch).execute({"ti": ti})
    assert summary["verdict"] == "pass"
    assert "no champion yet: value thresholds only" in summary["message"]
    assert summary["subjects"]["data"] == f"sha256:{batch['ref']['sha256']}"
    page = Path(summary["html_uri"][len("file://") :]).read_bytes()
    assert sha256_bytes(page) == summary["html_sha256"] and b"no champion yet" in page
    report = stored_report(ti)
    assert report["details"]["champion_status"] == "none"
    assert report["details"]["html"]["uri"] == summary["html_uri"]
    assert summary["metrics"]["candidate.roc_auc"] > 0.6


def test_worse_candidate_fails_against_the_champion(
    registered: dict[str, Any], batch: dict[str, Any]
) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from mlflow import MlflowClient

    ti = FakeTaskInstance(dag_id="shadow_test")
    with pytest.raises(AirflowFailException) as caught:
        operator(registered["v2"], batch).execute({"ti": ti})
    assert "gate shadow_evaluation fail: roc_auc is worse than the champion" in str(caught.value)
    report = stored_report(ti)
    assert report["result"]["verdict"] == "fail"
    champion = report["details"]["champion"]
    assert champion["uri"] == f"models:/{registered['v1']['name']}@{CHAMPION}"
    assert champion["version"] == registered["v1"]["version"]
    settings = Settings.from_env()
    run_id = LineageRecorder(settings).run_for(RunKey(ti.dag_id, ti.run_id))
    run = MlflowClient(settings.tracking_uri).get_run(run_id)
    assert run.data.tags["mlsecops.gate.shadow_evaluation"] == "fail"
    assert run.data.metrics["shadow_evaluation.delta.roc_auc"] < 0


def test_champion_as_candidate_and_uri_candidates(
    registered: dict[str, Any], batch: dict[str, Any]
) -> None:
    summary = operator(registered["v1"], batch).execute(
        {"ti": FakeTaskInstance(dag_id="shadow_test")}
    )
    assert summary["verdict"] == "pass" and "the candidate is the champion" in summary["message"]
    uri = f"models:/{registered['v1']['name']}/{registered['v2']['version']}"
    better = operator(uri, batch, champion_uri=registered["v2"]["model_uri"])
    assert (
        "is the champion"
        in better.execute({"ti": FakeTaskInstance(dag_id="shadow_test")})["message"]
    )
    reverse = operator(registered["v1"]["model_uri"], batch, champion_uri=uri)
    assert (
        reverse.execute({"ti": FakeTaskInstance(dag_id="shadow_test")})["metrics"]["delta.roc_auc"]
        > 0
    )


def test_bad_input_records_an_error_and_fails(
    registered: dict[str, Any], batch: dict[str, Any]
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    ti = FakeTaskInstance(dag_id="shadow_test")
    with pytest.raises(AirflowFailException, match="dataset has no label column 'defaulted'"):
        operator(registered["v2"], batch, label_column="defaulted").execute({"ti": ti})
    assert stored_report(ti)["result"]["verdict"] == "error"
    tampered = batch["root"] / "tampered.parquet"
    ref = write_table(generate(300, seed=3), tampered.as_uri())
    write_table(generate(300, seed=4), tampered.as_uri())
    with pytest.raises(AirflowFailException, match="DigestMismatchError"):
        operator(registered["v2"], batch, dataset=ref.to_dict()).execute(
            {"ti": FakeTaskInstance(dag_id="shadow_test")}
        )
    typo = operator(registered["v2"], batch, champion_uri="models:/no-such-model@champion")
    with pytest.raises(AirflowFailException, match="no registered model 'no-such-model'"):
        typo.execute({"ti": FakeTaskInstance(dag_id="shadow_test")})
    no_name = operator("runs:/0123/model", batch)
    with pytest.raises(AirflowFailException, match="is not a registered model: pass champion_uri"):
        no_name.execute({"ti": FakeTaskInstance(dag_id="shadow_test")})
