"""Gate data without the API: evidence paths, verification on S3, plugin registration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsecops_provider.core.evidence import EvidenceStore, GateResult
from mlsecops_provider.plugins.gate_evidence import (
    Integrity,
    dag_for_segment,
    evidence_dag_segment,
    evidence_url,
    parse_evidence_link,
    verify_gate,
)

ROOT = "file:///srv/evidence"


@pytest.mark.parametrize(
    "uri",
    [
        f"{ROOT}/dag_a/manual__2026-01-01T00_00_00_00_00/pii/report.json",
        f"{ROOT}/dag_a/run/gate/sbom.cdx.json",
    ],
)
def test_evidence_paths_under_the_root_name_their_dag(uri: str) -> None:
    assert evidence_dag_segment(ROOT, uri) == "dag_a"


@pytest.mark.parametrize(
    "uri",
    [
        "file:///srv/evidence-other/dag_a/run/gate/report.json",
        f"{ROOT}/../etc/passwd",
        f"{ROOT}/dag_a/run/../../../etc/passwd",
        f"{ROOT}/dag_a/%2e%2e/%2e%2e/x",
        f"{ROOT}/dag_a/run/gate/report.json?x=1",
        f"{ROOT}/dag_a//gate/report.json",
        f"{ROOT}/dag_a",
        "s3://bucket/evidence/dag_a/run/gate/report.json",
    ],
)
def test_evidence_paths_outside_or_odd_are_refused(uri: str) -> None:
    with pytest.raises(ValueError):
        evidence_dag_segment(ROOT, uri)


def test_dag_for_segment_matches_safe_segments_only() -> None:
    assert dag_for_segment("dag_a", {"dag_a", "dag_b"}) == "dag_a"
    assert dag_for_segment("dag_c", {"dag_a", "dag_b"}) is None


def test_reports_on_s3_are_verified_and_tampering_shows(s3_bucket: str) -> None:
    import boto3

    store = EvidenceStore(f"s3://{s3_bucket}/evidence")
    stored = store.put_report(
        "dag_a", "run_1", GateResult(gate="model_scan", verdict="fail", message="bad"), {"x": 1}
    )
    xcoms = {"return_value": stored.summary()}
    view = verify_gate(store, "dag_a", ("scan", -1), xcoms, {("scan", -1): "failed"})
    assert (view.integrity, view.verdict, view.task_state) == (Integrity.VERIFIED, "fail", "failed")
    assert view.details == {"x": 1}
    elsewhere = verify_gate(store, "dag_b", ("scan", -1), xcoms, {})
    assert elsewhere.integrity is Integrity.UNREADABLE  # not in dag_b's evidence folder
    key = stored.evidence_uri.removeprefix(f"s3://{s3_bucket}/")
    forged = GateResult(gate="model_scan", verdict="pass").to_dict()
    body = json.dumps({"result": forged, "details": {}}).encode()
    boto3.client("s3").put_object(Bucket=s3_bucket, Key=key, Body=body)
    view = verify_gate(store, "dag_a", ("scan", -1), xcoms, {})
    assert (view.integrity, view.verdict, view.message) == (Integrity.TAMPERED, "tampered", "")
    boto3.client("s3").delete_object(Bucket=s3_bucket, Key=key)
    assert verify_gate(store, "dag_a", ("scan", -1), xcoms, {}).integrity is Integrity.MISSING


def test_summary_that_disagrees_with_its_report_is_tampered(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path.as_uri())
    stored = store.put_report("dag_a", "run_1", GateResult(gate="pii", verdict="fail"), {})
    summary = {**stored.summary(), "verdict": "pass"}  # the XCom was edited, not the report
    view = verify_gate(store, "dag_a", ("pii", -1), {"return_value": summary}, {})
    assert view.integrity is Integrity.TAMPERED and view.verdict == "tampered"


def test_plugin_registers_app_views_and_links() -> None:
    from airflow import plugins_manager

    from mlsecops_provider.operators.links import EvidenceLink
    from mlsecops_provider.plugins.gate_review import MLSecOpsPlugin

    plugin = MLSecOpsPlugin()
    assert any(isinstance(link, EvidenceLink) for link in plugin.operator_extra_links)
    (app,) = plugin.fastapi_apps
    assert app["url_prefix"] == "/mlsecops" and app["name"]
    views = {v["destination"]: v for v in plugin.external_views}
    assert set(views) == {"nav", "dag", "dag_run", "task_instance"}
    assert views["dag_run"]["href"] == "/mlsecops/run?dag_id={DAG_ID}&run_id={RUN_ID}"
    assert len({v["url_route"] for v in plugin.external_views}) == 5
    nav = {v["href"] for v in plugin.external_views if v["destination"] == "nav"}
    assert nav == {"/mlsecops/", "/mlsecops/models"}
    apps, _ = plugins_manager.get_fastapi_plugins()
    assert any(a["url_prefix"] == "/mlsecops" for a in apps)  # loaded through the entry point


def test_evidence_link_urls_carry_uri_and_digest(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path.as_uri())
    stored = store.put_report("dag_a", "run_1", GateResult(gate="pii", verdict="fail"), {})
    assert stored.evidence_uri and stored.evidence_sha256
    url = evidence_url(stored.evidence_uri, stored.evidence_sha256, "https://airflow.example/")
    assert url.startswith("https://airflow.example/mlsecops/evidence?uri=file")
    assert parse_evidence_link(url) == (stored.evidence_uri, stored.evidence_sha256)
    assert parse_evidence_link(stored.evidence_uri) == (stored.evidence_uri, None)
    # a failed gate returns no summary; a link with the digest is enough to verify it
    view = verify_gate(store, "dag_a", ("pii", -1), {"_link_EvidenceLink": url}, {})
    assert (view.integrity, view.verdict, view.gate) == (Integrity.VERIFIED, "fail", "pii")
    bare = verify_gate(store, "dag_a", ("pii", -1), {"_link_EvidenceLink": stored.evidence_uri}, {})
    assert bare.integrity is Integrity.UNVERIFIED and bare.verdict == "unverified"
