"""Two small DAGs whose tasks record gates through ``record_gate``, for the gate review tests.

``review_alpha`` has a gate with hostile finding columns and file names, a gate whose report
the tests tamper with after the run, a gate that fails (so it returns no summary) and a
promotion gate with signature metrics and an audit entry; ``review_beta`` has one gate.
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

with DAG("review_beta", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    _task("scan", name="pii_scan", verdict="pass", findings=[], metrics={"columns_flagged": 0})
