"""The gate review app as the api-server mounts it: auth, per-DAG filtering, tampering, escaping."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.plugins.conftest import AirflowApi, ReviewRuns

ROUTES = ("/mlsecops/", "/mlsecops/api/gates", "/mlsecops/run", "/mlsecops/evidence")
HOSTILE = "<script>alert('xss')</script>"


def gates_by_task(payload: dict[str, Any], dag_id: str) -> dict[str, dict[str, Any]]:
    runs = [r for r in payload["runs"] if r["dag_id"] == dag_id]
    assert runs, f"no run of {dag_id} in {[r['dag_id'] for r in payload['runs']]}"
    return {g["task_id"]: g for g in runs[0]["gates"]}


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_needs_a_token(airflow_api: AirflowApi, path: str) -> None:
    assert airflow_api.get(path).status_code == 401
    bad = {"Authorization": "Bearer not-a-jwt"}
    assert airflow_api.get(path, headers=bad).status_code in (401, 403)


def test_browser_without_token_gets_a_login_link(airflow_api: AirflowApi) -> None:
    response = airflow_api.get("/mlsecops/", headers={"Accept": "text/html"})
    assert response.status_code == 401
    assert 'href="/auth/login?next=' in response.text


def test_viewer_sees_the_gates_of_every_dag(
    airflow_api: AirflowApi, review_runs: ReviewRuns
) -> None:
    payload = airflow_api.get("/mlsecops/api/gates", "reviewer").json()
    assert {"review_alpha", "review_beta"} <= {r["dag_id"] for r in payload["runs"]}
    alpha = gates_by_task(payload, "review_alpha")
    assert alpha["scan"]["gate"] == "pii_scan" and alpha["scan"]["verdict"] == "warn"
    assert alpha["scan"]["integrity"] == "verified"
    assert alpha["scan"]["metrics"]["columns_flagged"] == 2
    assert alpha["promote"]["verdict"] == "pass"


def test_user_without_dag_access_sees_nothing(
    airflow_api: AirflowApi, review_runs: ReviewRuns
) -> None:
    assert airflow_api.get("/mlsecops/api/gates", "outsider").json() == {"runs": []}
    page = airflow_api.get("/mlsecops/", "outsider")
    assert page.status_code == 200 and "review_alpha" not in page.text
    assert airflow_api.get("/mlsecops/api/gates?dag_id=review_alpha", "outsider").status_code == 403
    run = f"/mlsecops/run?dag_id=review_alpha&run_id={quote(review_runs.alpha)}"
    assert airflow_api.get(run, "outsider").status_code == 403


def test_per_dag_permissions_filter_the_gates(
    restricted_api: AirflowApi, review_runs: ReviewRuns
) -> None:
    payload = restricted_api.get("/mlsecops/api/gates", "alpha_only").json()
    assert {r["dag_id"] for r in payload["runs"]} == {"review_alpha"}
    assert "review_beta" not in restricted_api.get("/mlsecops/", "alpha_only").text
    beta = f"/mlsecops/run?dag_id=review_beta&run_id={quote(review_runs.beta)}"
    assert restricted_api.get(beta, "alpha_only").status_code == 403
    everyone = restricted_api.get("/mlsecops/api/gates", "reviewer").json()
    assert {"review_alpha", "review_beta"} <= {r["dag_id"] for r in everyone["runs"]}


def test_tampered_report_shows_as_tampered(
    airflow_api: AirflowApi, review_runs: ReviewRuns
) -> None:
    gate = gates_by_task(airflow_api.get("/mlsecops/api/gates", "reviewer").json(), "review_alpha")
    tampered = gate["tamper_me"]
    assert tampered["verdict"] == "tampered" and tampered["integrity"] == "tampered"
    assert "digest mismatch" in tampered["detail"]
    assert tampered["message"] == "" and tampered["metrics"] == {}  # nothing claimed is shown
    listed = airflow_api.get("/mlsecops/api/gates?verdict=pass", "reviewer").json()
    assert "tamper_me" not in gates_by_task(listed, "review_alpha")
    query = f"uri={quote(tampered['evidence_uri'])}&sha256={tampered['evidence_sha256']}"
    assert airflow_api.get(f"/mlsecops/evidence?{query}", "reviewer").status_code == 409


def test_failed_gate_is_shown_verified_from_its_pushed_summary(
    airflow_api: AirflowApi, review_runs: ReviewRuns
) -> None:
    # record_gate pushes the summary under `mlsecops_gate` before a failed gate raises, so the
    # failed task's report is still checked against its digest.
    gate = gates_by_task(airflow_api.get("/mlsecops/api/gates", "reviewer").json(), "review_alpha")
    blocked = gate["blocked"]
    assert blocked["task_state"] == "failed" and blocked["gate"] == "validation"
    assert blocked["verdict"] == "fail" and len(blocked["evidence_sha256"]) == 64


def test_promotion_signature_and_audit(airflow_api: AirflowApi, review_runs: ReviewRuns) -> None:
    url = f"/mlsecops/api/gates?dag_id=review_alpha&run_id={quote(review_runs.alpha)}"
    (run,) = airflow_api.get(url, "reviewer").json()["runs"]
    assert run["signature"] == {
        "promotion.signature_verified": True,
        "promotion.model_signature": "verified",
        "status": "verified",
        "key_id": "k-0123456789ab",
    }
    assert run["promotion"]["verdict"] == "pass"
    assert run["promotion"]["audit"] == {"audit": {"seq": 7, "hash": "ab12", "uri": "x"}}
    scan = next(g for g in run["gates"] if g["task_id"] == "scan")
    assert scan["details"] == {"checked": "pii_scan"}  # one run: full report details


def test_filters_by_dag_and_verdict(airflow_api: AirflowApi, review_runs: ReviewRuns) -> None:
    warn = airflow_api.get("/mlsecops/api/gates?verdict=warn", "reviewer").json()
    assert {g["verdict"] for r in warn["runs"] for g in r["gates"]} == {"warn"}
    beta = airflow_api.get("/mlsecops/api/gates?dag_id=review_beta", "reviewer").json()
    assert {r["dag_id"] for r in beta["runs"]} == {"review_beta"}
    page = airflow_api.get("/mlsecops/?dag_id=review_beta&verdict=pass", "reviewer").text
    assert "review_beta" in page and "pii_scan" in page and "tamper_me" not in page
    assert airflow_api.get("/mlsecops/?verdict=bogus", "reviewer").status_code == 400


def test_readable_dag_without_gates_is_empty_not_forbidden(airflow_api: AirflowApi) -> None:
    url = "/mlsecops/api/gates?dag_id=dag_without_gates"
    assert airflow_api.get(url, "reviewer").json() == {"runs": []}  # e.g. the DAG tab
    assert airflow_api.get(url, "outsider").status_code == 403


@pytest.mark.parametrize("page", ["overview", "run"])
def test_evidence_is_escaped_in_html(
    airflow_api: AirflowApi, review_runs: ReviewRuns, page: str
) -> None:
    url = "/mlsecops/"
    if page == "run":
        url = f"/mlsecops/run?dag_id=review_alpha&run_id={quote(review_runs.alpha)}&task_id=scan"
    response = airflow_api.get(url, "reviewer")
    assert response.status_code == 200
    html = response.text
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in html  # finding column
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in html  # file name
    assert "&lt;/td&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html  # metric value
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy


def test_run_page_lists_the_run_gates(airflow_api: AirflowApi, review_runs: ReviewRuns) -> None:
    url = f"/mlsecops/run?dag_id=review_alpha&run_id={quote(review_runs.alpha)}"
    html = airflow_api.get(url, "reviewer").text
    for text in ("pii_scan", "model_scan", "validation", "promotion", "Promotion decision"):
        assert text in html
    assert "Report details" in html
    missing = "/mlsecops/run?dag_id=review_alpha&run_id=nope"
    assert airflow_api.get(missing, "reviewer").status_code == 404


def test_evidence_route_serves_verified_reports_only(
    airflow_api: AirflowApi, review_runs: ReviewRuns
) -> None:
    gate = gates_by_task(airflow_api.get("/mlsecops/api/gates", "reviewer").json(), "review_alpha")
    uri, sha = gate["scan"]["evidence_uri"], gate["scan"]["evidence_sha256"]
    ok = airflow_api.get(f"/mlsecops/evidence?uri={quote(uri)}&sha256={sha}", "reviewer")
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    assert ok.json()["result"]["gate"] == "pii_scan"
    assert ok.headers["x-content-type-options"] == "nosniff"
    root = uri.split("/review_alpha/")[0]
    for bad_uri in (
        uri.replace("/pii_scan/", "/pii_scan/../../../"),
        uri.replace("/pii_scan/", "/%2e%2e/"),
        "file:///etc/passwd",
        f"{root}-other/review_alpha/x/report.json",
    ):
        response = airflow_api.get(
            f"/mlsecops/evidence?uri={quote(bad_uri)}&sha256={sha}", "reviewer"
        )
        assert response.status_code == 400, bad_uri
    wrong = airflow_api.get(f"/mlsecops/evidence?uri={quote(uri)}&sha256={'0' * 64}", "reviewer")
    assert wrong.status_code == 409
    assert (
        airflow_api.get(f"/mlsecops/evidence?uri={quote(uri)}&sha256=abc", "reviewer").status_code
        == 422
    )


def test_evidence_route_honours_dag_permissions(
    restricted_api: AirflowApi, review_runs: ReviewRuns
) -> None:
    gates = gates_by_task(
        restricted_api.get("/mlsecops/api/gates", "reviewer").json(), "review_beta"
    )
    uri, sha = gates["scan"]["evidence_uri"], gates["scan"]["evidence_sha256"]
    url = f"/mlsecops/evidence?uri={quote(uri)}&sha256={sha}"
    assert restricted_api.get(url, "reviewer").status_code == 200
    assert restricted_api.get(url, "alpha_only").status_code == 403
