"""Shadow rollout: a registered candidate warms up on production traffic, then is promoted.

``params.version`` of ``params.model_name`` (a version ``secure_training`` registered, so
its run carries a passing model scan) becomes ``@shadow``: ``mlsecops serve`` mirrors
production requests to it (restart or roll the serving deployment to load it) and logs both
answers to the prediction log. Then:

``resolve_candidate`` ─► ``set_shadow`` ─► ``wait_for_traffic`` (deferrable) ─► ``warmup_gate``
``scan_model`` (the exact bytes, again) ──────────────────────────────────────────┤
                                                   ``provenance`` ─► ``promote`` (signed)

The promotion policy (``include/policies/shadow_rollout.yaml``) requires ``model_scan``,
``shadow_warmup`` and ``provenance`` from this run; the alias moves only when all pass and
both signatures verify. Too little traffic before the sensor's timeout fails the warm-up
gate ("not enough traffic"), and nothing is promoted.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

from mlsecops_provider.core.settings import mlsecops_home, packaged_file
from mlsecops_provider.operators.model_scan import ModelScanOperator
from mlsecops_provider.operators.promotion import SignedPromotionGateOperator
from mlsecops_provider.operators.provenance import ProvenanceOperator
from mlsecops_provider.operators.shadow_warmup import ShadowWarmupGateOperator
from mlsecops_provider.sensors.shadow_traffic import ShadowTrafficSensor

HOME = str(mlsecops_home())
MODEL_NAME = os.environ.get("MLSECOPS_MODEL_NAME", "mlsecops-demo")
AWS_CONN_ID = os.environ.get("MLSECOPS_AWS_CONN_ID") or None
LOG_URI = f"file://{HOME}/evidence/serving/{MODEL_NAME}/predictions"
ROLLOUT_POLICY = os.environ.get("MLSECOPS_ROLLOUT_POLICY") or str(
    packaged_file("policies", "shadow_rollout.yaml")
)
WARMUP = timedelta(hours=24)


@task
def resolve_candidate(name: str, version: str) -> dict[str, Any]:
    """The candidate version, its source and its training data (read by digest)."""
    from mlsecops_provider.core.serving.rollout import candidate
    from mlsecops_provider.core.settings import Settings

    return candidate(Settings.from_env(), name, str(version))


@task
def set_shadow(found: dict[str, Any]) -> dict[str, str]:
    """``@shadow`` -> the candidate, only with a passing scan of its exact digest."""
    from mlsecops_provider.core.serving.rollout import set_shadow as move
    from mlsecops_provider.core.settings import Settings

    return move(Settings.from_env(), found["name"], found["version"])


with DAG(
    dag_id="shadow_rollout",
    description="Warm a candidate up as the shadow on production traffic, gate it, promote it",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["mlsecops", "serving", "promotion"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1), "owner": "mlsecops"},
    params={
        "model_name": Param(MODEL_NAME, type="string", description="registered model"),
        "version": Param("1", type="string", description="candidate version to warm up"),
        "log_uri": Param(LOG_URI, type="string", description="mlsecops serve's prediction log"),
        "min_requests": Param(200, type="integer", minimum=1),
    },
    doc_md=__doc__,
) as dag:
    candidate = resolve_candidate("{{ params.model_name }}", "{{ params.version }}")
    shadow = set_shadow(candidate)
    wait = ShadowTrafficSensor(
        task_id="wait_for_traffic",
        log_uri="{{ params.log_uri }}",
        min_requests=200,
        shadow_version="{{ params.version }}",
        aws_conn_id=AWS_CONN_ID,
        deferrable=True,
        poke_interval=300,
        timeout=WARMUP.total_seconds(),
    )
    warmup = ShadowWarmupGateOperator(
        task_id="warmup_gate",
        log_uri="{{ params.log_uri }}",
        shadow_version="{{ params.version }}",
        policy_path=ROLLOUT_POLICY,
        aws_conn_id=AWS_CONN_ID,
        trigger_rule="all_done",  # too little traffic: the gate fails with the reason
    )
    scan = ModelScanOperator(
        task_id="scan_model", model=candidate, policy_path=ROLLOUT_POLICY, aws_conn_id=AWS_CONN_ID
    )
    provenance = ProvenanceOperator(
        task_id="provenance",
        model=candidate,
        datasets=candidate["datasets"],
        gate_results=[scan.output, warmup.output],
        policy_path=ROLLOUT_POLICY,
        aws_conn_id=AWS_CONN_ID,
    )
    promote = SignedPromotionGateOperator(
        task_id="promote",
        model=candidate,
        provenance=provenance.output,
        gate_results=[scan.output, warmup.output],
        policy_path=ROLLOUT_POLICY,
        signing_key_path=os.environ.get(
            "MLSECOPS_SIGNING_KEY_PATH", f"{HOME}/keys/promotion.key.pem"
        ),
        aws_conn_id=AWS_CONN_ID,
    )
    shadow >> wait >> warmup
    candidate >> scan
