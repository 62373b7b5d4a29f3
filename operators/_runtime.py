"""What every operator of the provider shares: settings, stores, lineage and gate recording.

Functions, not a base class: an operator calls :func:`record_gate` with its GateResult and
gets the compact summary for XCom, the report in the evidence store, the verdict in MLflow,
the extra link to the report, and an ``AirflowFailException`` when the gate blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from mlsecops_provider.connections import s3_client_factory
from mlsecops_provider.core.errors import (
    AdvisorySourceError,
    ConfigError,
    DataError,
    DigestMismatchError,
    LineageError,
    MLSecOpsError,
    NotFoundError,
    StorageError,
)
from mlsecops_provider.core.evidence import EvidenceStore, GateResult, Verdict
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.lineage import LineageRecorder, RunKey

log = logging.getLogger(__name__)
GATE_SUMMARY_KEY = "mlsecops_gate"
EVIDENCE_LINK_KEY = "_link_EvidenceLink"  # EvidenceLink.xcom_key: Airflow serves it to the UI


def run_key(context: Mapping[str, Any]) -> RunKey:
    ti = context["ti"]
    return RunKey(dag_id=ti.dag_id, run_id=ti.run_id, try_number=getattr(ti, "try_number", None))


def evidence_store(aws_conn_id: str | None, settings: Settings | None = None) -> EvidenceStore:
    settings = settings or Settings.from_env()
    return EvidenceStore(settings.evidence_uri, s3_client_factory(aws_conn_id))


def record_gate(
    context: Mapping[str, Any],
    result: GateResult,
    details: Mapping[str, Any],
    *,
    aws_conn_id: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Store the report, log the verdict to MLflow, push the link; fail the task if blocking."""
    from airflow.sdk.exceptions import AirflowFailException

    settings = settings or Settings.from_env()
    key = run_key(context)
    lineage = LineageRecorder(settings)
    mlflow_run_id = lineage.run_for(key)
    # The report names the run it belongs to: the promotion gate refuses another run's reports.
    owned = result.finished(dag_id=key.dag_id, run_id=key.run_id, mlflow_run_id=mlflow_run_id)
    stored = evidence_store(aws_conn_id, settings).put_report(
        key.dag_id, key.run_id, owned, details
    )
    lineage.log_gate(mlflow_run_id, stored)
    context["ti"].xcom_push(key=EVIDENCE_LINK_KEY, value=stored.evidence_uri)
    # The summary also when the gate fails below (no return value then): the review UI
    # verifies every report against this digest.
    context["ti"].xcom_push(key=GATE_SUMMARY_KEY, value=stored.summary())
    log.info(
        "Gate %s: %s%s | report %s (sha256 %s)",
        stored.gate,
        stored.verdict.value.upper(),
        f" - {stored.message}" if stored.message else "",
        stored.evidence_uri,
        stored.evidence_sha256,
    )
    for finding in stored.findings[:20]:
        log.info("  finding: %s", finding)
    if stored.verdict.blocks:
        raise AirflowFailException(
            f"gate {stored.gate} {stored.verdict.value}: {stored.message or 'see report'} "
            f"(report {stored.evidence_uri})"
        )
    return stored.summary()


@contextmanager
def bad_input_fails_task() -> Iterator[None]:
    """Bad input (config, data, digest, a wrong path) fails the task at once, unretried."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except (ConfigError, DataError, DigestMismatchError, NotFoundError) as err:
        raise AirflowFailException(f"{type(err).__name__}: {err}") from err


def _transient(err: MLSecOpsError) -> bool:
    """A service that did not answer may answer on retry; bad input never will."""
    if isinstance(err, (NotFoundError, DigestMismatchError)):
        return False
    return isinstance(err, (StorageError, LineageError, AdvisorySourceError))


@contextmanager
def gate_errors_recorded(
    context: Mapping[str, Any], gate: str, *, aws_conn_id: str | None = None
) -> Iterator[None]:
    """A gate that cannot decide records verdict ``error`` (fail closed) and fails unretried.

    Transient errors (an unreachable store, tracking server or advisory service) propagate
    unchanged so that Airflow retries the task.
    """
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except MLSecOpsError as err:
        if _transient(err):
            raise
        reason = f"{type(err).__name__}: {err}"
        result = GateResult(gate=gate, verdict=Verdict.ERROR, message=reason)
        try:
            record_gate(context, result, {"error": reason}, aws_conn_id=aws_conn_id)
        except AirflowFailException:
            raise
        except Exception as record_err:  # the error itself is what the user must see
            log.error("could not record the %s error: %s", gate, record_err)
        raise AirflowFailException(f"gate {gate} error: {reason}") from err
