"""DependencyAuditOperator end to end: real pip-audit, offline OSV records, evidence, MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.lineage import LineageRecorder, RunKey
from tests.operators.fakes import FakeTaskInstance

ADVISORIES = Path(__file__).resolve().parents[1] / "fixtures" / "advisories"


def _operator(requirements: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    from mlsecops_provider.operators.dependency_audit import DependencyAuditOperator

    return DependencyAuditOperator(
        task_id="audit", requirements=str(requirements), advisory_db=str(ADVISORIES), **kwargs
    )


def test_vulnerable_pins_fail_with_evidence_and_sbom(tmp_path: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("Werkzeug==2.0.0\nsix==1.16.0\n")
    ti = FakeTaskInstance("manual__audit_fail")
    with pytest.raises(AirflowFailException, match="gate dependency_audit fail"):
        _operator(requirements).execute({"ti": ti})
    report_uri = ti.xcom["_link_EvidenceLink"]
    report = json.loads(Path(report_uri.removeprefix("file://")).read_text())
    ids = {f["id"] for f in report["result"]["findings"]}
    assert any(i.startswith(("PYSEC", "GHSA")) for i in ids)
    sbom = json.loads(Path(report["details"]["sbom"]["uri"].removeprefix("file://")).read_text())
    assert {c["name"].lower() for c in sbom["components"]} >= {"werkzeug", "six"}
    lineage = LineageRecorder(Settings.from_env())
    run = lineage.client.get_run(lineage.run_for(RunKey(ti.dag_id, ti.run_id)))
    assert run.data.tags["mlsecops.gate.dependency_audit"] == "fail"


def test_clean_pins_pass(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("werkzeug==3.0.1\nsix==1.16.0\n")
    ti = FakeTaskInstance("manual__audit_pass")
    summary = _operator(requirements).execute({"ti": ti})
    assert summary["verdict"] == "pass" and summary["sbom_sha256"]


def test_unpinned_requirement_is_an_error_verdict(tmp_path: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("requests>=2.0\n")
    ti = FakeTaskInstance("manual__audit_error")
    with pytest.raises(AirflowFailException, match="not pinned"):
        _operator(requirements).execute({"ti": ti})
    lineage = LineageRecorder(Settings.from_env())
    run = lineage.client.get_run(lineage.run_for(RunKey(ti.dag_id, ti.run_id)))
    assert run.data.tags["mlsecops.gate.dependency_audit"] == "error"
