"""Red team, trust chain: a human approval is part of what the signature attests.

End to end with ``dag.test()`` and ``MLSECOPS_REQUIRE_APPROVAL=true``: the DAG's Airflow
HITL operator (Approve / Reject) parks the run in ``awaiting_input``; a responder thread
answers it the way Airflow's HITL REST API does (writes the response on the HITL detail row
and resumes the task with ``handle_event_submit``). One run is approved (the champion moves,
the approver is in the signed record), the next is rejected (the champion stays, the refusal
is audited).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.promotion.audit_log import AuditLog, default_log_uri
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.registry import alias_version
from mlsecops_provider.include.generator import generate

pytestmark = pytest.mark.slow
MODEL = "hitl-demo"


def _answer(option: str, user: tuple[str, str], done: threading.Event, seen: list[str]) -> None:
    """Answer the first approval request waiting for input, as the HITL API would."""
    from airflow.models.hitl import HITLDetail, HITLUser
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import handle_event_submit
    from airflow.triggers.base import TriggerEvent
    from airflow.utils import timezone
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    while not done.is_set():
        with create_session() as session:
            ti = session.scalars(
                select(TaskInstance).where(
                    TaskInstance.task_id == "approve_promotion",
                    TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                )
            ).first()
            detail = session.get(HITLDetail, ti.id) if ti is not None else None
            if ti is not None and detail is not None:
                detail.responded_by = HITLUser(id=user[0], name=user[1])
                detail.responded_at = timezone.utcnow()
                detail.chosen_options = [option]
                detail.params_input = {}
                session.add(detail)
                event = TriggerEvent(detail.as_resume_event_payload())
                handle_event_submit(event, task_instance=ti, session=session)
                seen.append(ti.run_id)
                return
        time.sleep(0.5)


def _run_with_answer(source_uri: str, option: str, user: tuple[str, str]) -> tuple[Any, list]:
    from airflow.dag_processing.dagbag import DagBag

    dags = Path(__file__).resolve().parents[2] / "dags"
    dag = DagBag(dag_folder=str(dags)).get_dag("secure_training")
    assert "approve_promotion" in dag.task_dict, "MLSECOPS_REQUIRE_APPROVAL was not read"
    done, seen = threading.Event(), []
    responder = threading.Thread(target=_answer, args=(option, user, done, seen), daemon=True)
    responder.start()
    try:
        dag_run = dag.test(run_conf={"source_uri": source_uri})
    finally:
        done.set()
        responder.join(timeout=10)
    return dag_run, seen


def _states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


@pytest.fixture(scope="module")
def hitl_runs(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from mlsecops_provider.core.promotion.signing import ensure_demo_keys

    ensure_demo_keys(Settings.from_env().home)
    patch = pytest.MonkeyPatch()
    patch.setenv("MLSECOPS_REQUIRE_APPROVAL", "true")
    patch.setenv("MLSECOPS_MODEL_NAME", MODEL)
    folder = tmp_path_factory.mktemp("hitl-incoming")
    first = write_table(generate(800, seed=7), (folder / "b1.parquet").as_uri())
    second = write_table(generate(800, seed=11), (folder / "b2.parquet").as_uri())
    try:
        approved = _run_with_answer(first.uri, "Approve", ("ada", "Ada"))
        rejected = _run_with_answer(second.uri, "Reject", ("bob", "Bob"))
    finally:
        patch.undo()
    return {"approved": approved, "rejected": rejected}


def test_approved_run_moves_the_champion_with_the_approver_signed(
    hitl_runs: dict[str, Any],
) -> None:
    """Approve: promote runs, the champion moves, the signed record names the approver."""
    import base64
    import json

    dag_run, seen = hitl_runs["approved"]
    assert seen == [dag_run.run_id], "the approval request was never answered"
    assert str(dag_run.state) == "success", _states(dag_run)
    settings = Settings.from_env()
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri)
    champion = alias_version(client, MODEL, "champion")
    assert champion is not None
    tags = client.get_model_version(MODEL, champion).tags
    envelope = json.loads(Path(tags["mlsecops.promotion.evidence_uri"][7:]).read_text())
    approval = json.loads(base64.b64decode(envelope["payload"]))["predicate"]["approval"]
    assert approval["approved"] is True and approval["by"] == "Ada (ada)"
    entry = next(
        e
        for e in reversed(AuditLog(default_log_uri(settings.evidence_uri)).entries())
        if e.kind == "promotion" and e.details.get("registered_model") == MODEL
    )
    assert entry.details["approved_by"] == "Ada (ada)" and entry.details["version"] == champion


def test_rejected_run_keeps_the_champion_and_audits_the_refusal(
    hitl_runs: dict[str, Any],
) -> None:
    """Reject: the champion stays, and the refusal (who rejected) is in the audit log."""
    from mlflow import MlflowClient

    approved_run, _ = hitl_runs["approved"]
    dag_run, seen = hitl_runs["rejected"]
    assert seen == [dag_run.run_id], "the approval request was never answered"
    states = _states(dag_run)
    assert states["approve_promotion"] == "success" and states["promote"] == "failed", states
    settings = Settings.from_env()
    client = MlflowClient(settings.tracking_uri)
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{MODEL}'"))
    assert alias_version(client, MODEL, "champion") == str(versions[0])  # unchanged
    entries = AuditLog(default_log_uri(settings.evidence_uri)).entries()
    refusal = next(
        e
        for e in reversed(entries)
        if e.kind == "refusal" and e.details.get("registered_model") == MODEL
    )
    assert refusal.details["invocation"] == f"secure_training/{dag_run.run_id}"
    assert any("not approved" in r and "Bob (bob)" in r for r in refusal.details["reasons"])
    assert approved_run.run_id != dag_run.run_id
