"""Two small DAGs whose tasks record gates through ``record_gate``, for the gate review tests.

``review_alpha`` has a gate with hostile finding columns and file names, a gate whose report
the tests tamper with after the run, a gate that fails (so it returns no summary) and a
promotion gate with signature metrics and an audit entry; ``review_beta`` has one gate and
a sensor that reports drift of ``review-model``'s champion.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

HOSTILE = "<script>alert('xss')</script>"


def gate(
    name: str,
    verdict: str,
    findings: list[dict[str, Any]],
    metrics: dict[str, Any],
    details: dict[str, Any] | None = None,
    **context: Any,
) -> dict[str, Any]:
    from mlsecops_provider.core.evidence import GateResult
    from mlsecops_provider.operators._runtime import record_gate

    result = GateResult(
        gate=name,
        verdict=verdict,
        metrics=metrics,
        findings=findings,
        message=f"{name} says {verdict}",
    )
    return record_gate(context, result, details or {"checked": name})


def _task(task_id: str, **kwargs: Any) -> PythonOperator:
    return PythonOperator(task_id=task_id, python_callable=gate, op_kwargs=kwargs, retries=0)


with DAG("review_alpha", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    _task(
        "scan",
        name="pii_scan",
        verdict="warn",
        findings=[
            {HOSTILE: "<b>bold</b>", "file": "<img src=x onerror=alert(1)>.csv", "rows": 3},
            {"column": "email", "file": "batch.csv", "rows": 12},
        ],
        metrics={"columns_flagged": 2, "note": "</td><script>alert(2)</script>"},
    )
    _task("tamper_me", name="model_scan", verdict="warn", findings=[], metrics={"issues": 1})
    _task("blocked", name="validation", verdict="fail", findings=[], metrics={"failed": 4})
    _task(
        "promote",
        name="promotion",
        verdict="pass",
        findings=[],
        metrics={"signature_verified": True, "model_signature": "verified", "champion": "v2"},
        details={"key_id": "k-0123456789ab", "audit": {"seq": 7, "hash": "ab12", "uri": "x"}},
    )


class DriftSensor(PythonOperator):
    """Stands in for the provider's DriftSensor: the XCom it returns when it finds drift."""


def sensed_drift() -> dict[str, Any]:
    reference = {"model_name": "review-model", "version": "1", "uri": "file:///x", "sha256": "0"}
    return {"reason": "drift", "drifted": True, "drifted_columns": ["annual_income"],
            "max_psi": 0.41, "reference": reference}  # fmt: skip


with DAG("review_beta", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    _task("scan", name="pii_scan", verdict="pass", findings=[], metrics={"columns_flagged": 0})
    DriftSensor(task_id="detect_drift", python_callable=sensed_drift, retries=0)


# ---------------------------------------------------------------------------- review_gamma
# A pipeline whose task order differs from the alphabetical one, with the reports' shapes the
# pictures are drawn from, a real registered model and a real signed promotion.

HOSTILE_COLUMN = "<svg onload=alert(3)>"


def _shadow_details() -> dict[str, Any]:
    def est(candidate: float, champion: float, low: float, high: float) -> dict[str, Any]:
        delta = candidate - champion
        return {
            "candidate": candidate,
            "candidate_ci": [candidate - 0.02, candidate + 0.02],
            "champion": champion,
            "champion_ci": [champion - 0.02, champion + 0.02],
            "delta": delta,
            "delta_ci": [low, high],
            "relative": delta / champion,
            "relative_ci": [low / champion, high / champion],
        }

    return {
        "estimates": {
            "all": {
                "accuracy": est(0.7369477911646586, 0.7108433734939759, 0.0051, 0.0468),
                "roc_auc": est(0.6776668233082707, 0.6812345678901234, -0.0214, 0.0141),
                "log_loss": est(0.5304128259040972, 0.5122222222222222, 0.0052, 0.0311),
            }
        }
    }


def _drift_details() -> dict[str, Any]:
    columns = {
        "age": {"column_type": "numeric", "drifted": False, "psi": 0.018332},
        "annual_income": {"column_type": "numeric", "drifted": True, "psi": 1.028366},
        "region": {"column_type": "categorical", "drifted": True, "psi": 0.378068},
        HOSTILE_COLUMN: {"column_type": "numeric", "drifted": False, "psi": 0.05},
    }
    return {"screens": {"drift": {"status": "warn", "metrics": {"columns": columns}}}}


def _explain_details() -> dict[str, Any]:
    shares = {"annual_income": 0.41, "debt_to_income": 0.27, "age": 0.2, "region": 0.12}
    return {
        "importance": [
            {"feature": f, "mean_abs_shap": s / 10, "share": s} for f, s in shares.items()
        ]
    }


def _fairness_details() -> dict[str, Any]:
    return {
        "by_group": {
            "region": {
                "north": {"selection_rate": 0.21, "true_positive_rate": 0.62},
                "south": {"selection_rate": 0.18, "true_positive_rate": 0.58},
                "east": {"selection_rate": 0.25, "true_positive_rate": 0.66},
            }
        }
    }


def _serving_details() -> dict[str, Any]:
    windows = [
        {"window": f"2026-01-01T{h:02d}:00", "agreement": 0.9 + h / 100, "latency_ms": 4 + h}
        for h in range(6)
    ]
    return {"windows": windows}


def register(**context: Any) -> dict[str, str]:
    """Train a tiny real model, log it (skops) and register it, tagged with this run."""
    import mlflow
    import numpy as np
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    from mlsecops_provider.core.settings import Settings

    settings = Settings.from_env()
    mlflow.set_tracking_uri(settings.tracking_uri)
    dag_run = context["dag_run"]
    rows = np.random.default_rng(0).normal(size=(60, 3))
    model = LogisticRegression().fit(rows, (rows[:, 0] > 0).astype(int))
    client = MlflowClient(settings.tracking_uri)
    found = client.get_experiment_by_name("review-gamma")  # not set_experiment: no global state
    experiment = found.experiment_id if found else client.create_experiment("review-gamma")
    with mlflow.start_run(experiment_id=experiment) as run:
        info = mlflow.sklearn.log_model(
            model, name="model", serialization_format="skops", pip_requirements=["scikit-learn"]
        )
    tags = {"mlsecops.dag_id": dag_run.dag_id, "mlsecops.run_id": dag_run.run_id}
    version = mlflow.register_model(info.model_uri, context["params"]["model_name"], tags=tags)
    return {
        "name": version.name,
        "version": str(version.version),
        "source": str(version.source),
        "mlflow_run_id": run.info.run_id,
    }


def promote(**context: Any) -> dict[str, Any]:
    """The real signed promotion of the registered version (the gate the operator runs)."""
    import tempfile

    from mlsecops_provider.core.evidence import EvidenceStore, GateResult, Verdict
    from mlsecops_provider.core.hashing import hash_path
    from mlsecops_provider.core.policy import parse_policy
    from mlsecops_provider.core.promotion.checks import Approval, Candidate, PromotionRequest
    from mlsecops_provider.core.promotion.gate import PromotionEnv, promote
    from mlsecops_provider.core.promotion.signing import SigningKey
    from mlsecops_provider.core.provenance.slsa import (
        Resource,
        RunInfo,
        build_statement,
        statement_bytes,
    )
    from mlsecops_provider.core.settings import Settings
    from mlsecops_provider.core.tracking.registry import download_model
    from mlsecops_provider.operators._runtime import record_gate

    settings = Settings.from_env()
    ti, dag_run = context["ti"], context["dag_run"]
    model = ti.xcom_pull(task_ids="register")
    candidate = Candidate(model["name"], model["version"], model["source"])
    store = EvidenceStore(settings.evidence_uri)
    with tempfile.TemporaryDirectory() as tmp:
        digest = hash_path(download_model(settings, candidate.source_uri, tmp)).root_digest
    invocation = f"{dag_run.dag_id}/{dag_run.run_id}"
    run = RunInfo("test://review", invocation, "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z")
    subject = Resource(name=f"{candidate.name}/{candidate.version}", sha256=digest)
    statement = build_statement(subject, run, external_parameters={})
    ref = store.put_bytes(
        store.uri_for(dag_run.dag_id, dag_run.run_id, "provenance", "provenance.intoto.json"),
        statement_bytes(statement),
    )
    binding = {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id}
    binding["mlflow_run_id"] = model["mlflow_run_id"]
    if "dag_id" not in GateResult.__dataclass_fields__:  # reports not yet bound to runs
        binding = {}
    result = GateResult(
        gate="provenance", verdict=Verdict.PASS, subjects={"model": digest}, **binding
    )
    stored = store.put_report(
        dag_run.dag_id, dag_run.run_id, result.finished(), {"statement": statement}
    )
    provenance = {**stored.summary(), "statement_uri": ref.uri, "model_sha256": digest}
    policy = parse_policy(
        {
            "required_gates": ["provenance"],
            "signing": {"public_keys": ["keys/promotion.pub.pem"]},
        },
        "review-policy.yaml",
        "cd" * 32,
    )
    approval = Approval(True, "Rita Reviewer (rita)", "2026-01-01T00:02:00+00:00", "looks fine")
    request = PromotionRequest(candidate, [provenance], provenance, policy, approval)
    key = SigningKey.from_file(settings.home / "keys" / "promotion.key.pem")
    env = PromotionEnv.create(settings, dag_run.dag_id, dag_run.run_id)
    gate_result, details = promote(request, key, env)
    return record_gate(context, gate_result, details)


with DAG(
    "review_gamma",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"model_name": "review-model"},
):
    validate = _task(
        "validate_data",
        name="data_validation",
        verdict="warn",
        findings=[{"column": "annual_income", "screen": "drift"}],
        metrics={"drift_columns_drifted": 2, "drift_max_psi": 1.028366},
        details=_drift_details(),
    )
    shadow = _task(
        "shadow_evaluation",
        name="shadow_evaluation",
        verdict="pass",
        findings=[],
        metrics={
            "candidate.accuracy": 0.7369477911646586,
            "champion.accuracy": 0.7108433734939759,
            "delta.accuracy": 0.0261044176706827,
            "rows": 1500,
        },
        details=_shadow_details(),
    )
    explain = _task(
        "explain_model", name="explainability", verdict="pass", findings=[], metrics={},
        details=_explain_details(),
    )  # fmt: skip
    fairness = _task(
        "check_fairness", name="fairness", verdict="pass", findings=[], metrics={},
        details=_fairness_details(),
    )  # fmt: skip
    registered = PythonOperator(task_id="register", python_callable=register, retries=0)
    promoted = PythonOperator(task_id="promote", python_callable=promote, retries=0)
    serving = _task(
        "serve_shadow", name="shadow_serving", verdict="pass", findings=[], metrics={},
        details=_serving_details(),
    )  # fmt: skip
    validate >> shadow >> explain >> fairness >> registered >> promoted >> serving
