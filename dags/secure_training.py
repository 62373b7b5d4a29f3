"""Secure training: every step behind a gate, every gate with evidence in MLflow.

ingest -> validate (GX + poisoning screens) -> de-identify PII -> train -> scan the model ->
shadow-evaluate against the champion -> register -> provenance (SLSA) -> signed promotion;
the environment's dependency audit runs beside them. After the scan, the explainability gate
(SHAP: what drives the candidate, drift from the champion, forbidden features) and the
fairness gate (Fairlearn: per-group rates and disparities with intervals) judge the model too.

The environment's dependencies are audited once per run (offline advisories from
``MLSECOPS_ADVISORY_DB``, an OSV endpoint from ``MLSECOPS_OSV_URL``, else the public OSV API).

Trigger it with ``{"source_uri": "s3://bucket/path/batch.parquet"}`` (or a file path); the
default is the demo batch written by ``mlsecops demo-data``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param

from mlsecops_provider.core.settings import mlsecops_home
from mlsecops_provider.operators.adversarial import AdversarialOperator
from mlsecops_provider.operators.backdoor_scan import BackdoorScanOperator
from mlsecops_provider.operators.dependency_audit import DependencyAuditOperator
from mlsecops_provider.operators.explainability import ExplainabilityOperator
from mlsecops_provider.operators.fairness import FairnessOperator
from mlsecops_provider.operators.ingest import DatasetIngestOperator
from mlsecops_provider.operators.model_scan import ModelScanOperator
from mlsecops_provider.operators.pii import PIIDeidentifyOperator
from mlsecops_provider.operators.privacy_risk import PrivacyRiskOperator
from mlsecops_provider.operators.promotion import SignedPromotionGateOperator
from mlsecops_provider.operators.provenance import ProvenanceOperator
from mlsecops_provider.operators.register import RegisterModelOperator
from mlsecops_provider.operators.shadow import ShadowEvaluationOperator
from mlsecops_provider.operators.train import SklearnTrainOperator
from mlsecops_provider.operators.validation import DataValidationOperator

HOME = str(mlsecops_home())
DEFAULT_SOURCE = f"file://{HOME}/incoming/credit_batch_001.parquet"
MODEL_NAME = os.environ.get("MLSECOPS_MODEL_NAME", "mlsecops-demo")
AWS_CONN_ID = os.environ.get("MLSECOPS_AWS_CONN_ID") or None
POLICY_PATH = os.environ.get("MLSECOPS_POLICY") or None
SIGNING_CONN_ID = os.environ.get("MLSECOPS_SIGNING_CONN_ID") or None  # password = PEM key
SIGNING_KEY_PATH = os.environ.get("MLSECOPS_SIGNING_KEY_PATH", f"{HOME}/keys/promotion.key.pem")
REQUIRE_APPROVAL = os.environ.get("MLSECOPS_REQUIRE_APPROVAL", "").lower() in ("1", "true", "yes")
RETRAIN_REQUEST = Asset("mlsecops://retrain-request")  # emitted by retrain_on_drift
# The newest retrain request of an asset-triggered run; manual runs use params.source_uri.
REQUEST = "(triggering_asset_events.values() | first | sort(attribute='timestamp') | last).extra"
LABEL = "default"
NUMERIC = (
    "age",
    "annual_income",
    "loan_amount",
    "loan_term_months",
    "credit_history_months",
    "num_open_accounts",
    "debt_to_income",
)
CATEGORICAL = ("employment_type", "region", "purpose")
# identifiers, PII and free text: not features, left out of the poisoning screens
NOT_FEATURES = (
    "customer_id",
    "full_name",
    "email",
    "phone",
    "ssn",
    "card_number",
    "iban",
    "street_address",
    "ip_address",
    "notes",
)

with DAG(
    dag_id="secure_training",
    description="Train a credit-risk model behind security gates, with evidence in MLflow",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * 1", timezone="UTC"), assets=RETRAIN_REQUEST
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["mlsecops", "training"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30), "owner": "mlsecops"},
    params={"source_uri": Param(DEFAULT_SOURCE, type="string", description="dataset URI")},
    doc_md=__doc__,
) as dag:
    ingest = DatasetIngestOperator(
        task_id="ingest",
        source_uri="{{ " + REQUEST + "['uri'] if triggering_asset_events else params.source_uri }}",
        source_sha256="{{ " + REQUEST + "['sha256'] if triggering_asset_events else '' }}",
        dataset_name="raw",
        label_column=LABEL,
        aws_conn_id=AWS_CONN_ID,
    )
    validate = DataValidationOperator(
        task_id="validate_data",
        dataset=ingest.output,
        reference_model=MODEL_NAME,  # screens against the champion's training data
        # a retrain request for drift brings drifted data: drift and label shift only warn
        drift_expected="{{ (" + REQUEST + "['reason'] == 'drift') if triggering_asset_events "
        "else '' }}",
        quarantine=True,
        label_column=LABEL,
        exclude_columns=NOT_FEATURES,
        policy_path=POLICY_PATH,
        aws_conn_id=AWS_CONN_ID,
    )
    deidentify = PIIDeidentifyOperator(
        task_id="deidentify_pii",
        dataset=validate.output,
        label_column=LABEL,
        policy_path=POLICY_PATH,
        aws_conn_id=AWS_CONN_ID,
    )
    train = SklearnTrainOperator(
        task_id="train",
        dataset=deidentify.output["dataset"],  # the model never sees the raw PII
        label_column=LABEL,
        numeric_features=NUMERIC,
        categorical_features=CATEGORICAL,
        registered_model_name=MODEL_NAME,
        aws_conn_id=AWS_CONN_ID,
    )
    scan = ModelScanOperator(
        task_id="scan_model", model=train.output, policy_path=POLICY_PATH, aws_conn_id=AWS_CONN_ID
    )
    shadow = ShadowEvaluationOperator(
        task_id="shadow_evaluation",
        candidate=train.output,
        dataset=train.output["holdout"],  # rows neither model trained on
        label_column=LABEL,
        policy_path=POLICY_PATH,
        aws_conn_id=AWS_CONN_ID,
    )
    # what drives the candidate (vs the champion), and for whom it fails (groups from the
    # policy's gates.fairness: region and age bands of the holdout rows)
    explain = ExplainabilityOperator(
        task_id="explainability",
        candidate=train.output,
        dataset=train.output["holdout"],
        label_column=LABEL,
        policy_path=POLICY_PATH,
        aws_conn_id=AWS_CONN_ID,
    )
    fairness = FairnessOperator(
        task_id="fairness",
        candidate=train.output,
        dataset=train.output["holdout"],
        label_column=LABEL,
        policy_path=POLICY_PATH,
        aws_conn_id=AWS_CONN_ID,
    )
    scan >> [explain, fairness]  # a model is loaded only after its scan passed
    # attack the candidate afresh: membership inference (training rows vs holdout), evasion
    # (against the champion on the holdout), backdoor triggers (screening the training rows)
    privacy = PrivacyRiskOperator(
        task_id="privacy_risk",
        model=train.output,
        train_dataset=deidentify.output["dataset"],
        holdout_dataset=train.output["holdout"],
        training_includes_holdout=True,  # the train task split this table
        label_column=LABEL,
        policy_path=POLICY_PATH,
        aws_conn_id=AWS_CONN_ID,
    )
    adversarial = AdversarialOperator(
        task_id="adversarial",
        model=train.output,
        dataset=train.output["holdout"],
        label_column=LABEL,
        policy_path=POLICY_PATH,
        aws_conn_id=AWS_CONN_ID,
    )
    backdoor = BackdoorScanOperator(
        task_id="backdoor_scan",
        model=train.output,
        dataset=deidentify.output["dataset"],
        label_column=LABEL,
        policy_path=POLICY_PATH,
        aws_conn_id=AWS_CONN_ID,
    )
    attacks = [privacy, adversarial, backdoor]
    scan >> attacks
    register = RegisterModelOperator(
        task_id="register_model", model=train.output, gate_results=[scan.output, shadow.output]
    )
    audit = DependencyAuditOperator(
        task_id="audit_dependencies", policy_path=POLICY_PATH, aws_conn_id=AWS_CONN_ID
    )
    gates = [validate.output, deidentify.output["gate"], scan.output, shadow.output, audit.output]
    gates += [explain.output, fairness.output]
    gates += [privacy.output, adversarial.output, backdoor.output]
    provenance = ProvenanceOperator(
        task_id="provenance",
        model=register.output,
        datasets={
            "raw": ingest.output,
            "validated": validate.output,
            "deidentified": deidentify.output["dataset"],
            "holdout": train.output["holdout"],  # what the shadow evaluation scored
        },
        gate_results=gates,
        aws_conn_id=AWS_CONN_ID,
    )
    approve = None
    if REQUIRE_APPROVAL:  # Approve or Reject: `promote` decides (a Reject is an audited refusal)
        approve = HITLOperator(  # not ApprovalOperator: its Reject skips `promote` unaudited
            task_id="approve_promotion",
            options=["Approve", "Reject"],
            defaults=["Reject"],  # no answer within the timeout: rejected
            subject="Promote {{ ti.xcom_pull(task_ids='register_model')['name'] }} "
            "v{{ ti.xcom_pull(task_ids='register_model')['version'] }} to champion?",
            body="Gate verdicts and evidence links are on this run's tasks and its MLflow run.",
            response_timeout=timedelta(hours=24),
        )
        provenance >> approve
    promote = SignedPromotionGateOperator(
        task_id="promote",
        model=register.output,
        provenance=provenance.output,
        gate_results=gates,
        policy_path=POLICY_PATH,
        signing_key_conn_id=SIGNING_CONN_ID,
        signing_key_path=SIGNING_KEY_PATH,
        approval=approve.output if approve else None,
        require_approval=REQUIRE_APPROVAL or None,  # None: the policy decides
        aws_conn_id=AWS_CONN_ID,
    )
    ingest >> validate >> deidentify >> train >> scan >> shadow >> register >> provenance >> promote
    audit >> provenance
    attacks >> register
