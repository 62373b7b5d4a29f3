"""The run page as reviewers read it: DAG order, rounded numbers, the decision in words,
candidate vs champion side by side, and inline SVG pictures drawn from verified evidence."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.plugins.conftest import MODEL, AirflowApi, ReviewRuns

PIPELINE = ["validate_data", "shadow_evaluation", "explain_model", "check_fairness", "promote"]


def run_url(review_runs: ReviewRuns, api: bool = False) -> str:
    base = "/mlsecops/api/gates" if api else "/mlsecops/run"
    return f"{base}?dag_id=review_gamma&run_id={quote(review_runs.gamma)}"


@pytest.fixture(scope="module")
def gamma_html(airflow_api: AirflowApi, review_runs: ReviewRuns) -> str:
    response = airflow_api.get(run_url(review_runs), "reviewer")
    assert response.status_code == 200, response.text
    keep = os.environ.get("RUN_PAGE_HTML")
    if keep:
        Path(keep).write_text(response.text)
    return str(response.text)


@pytest.fixture(scope="module")
def gamma_json(airflow_api: AirflowApi, review_runs: ReviewRuns) -> dict[str, Any]:
    (run,) = airflow_api.get(run_url(review_runs, api=True), "reviewer").json()["runs"]
    return dict(run)


def test_gates_follow_the_dag_order_not_the_alphabet(
    gamma_json: dict[str, Any], gamma_html: str
) -> None:
    tasks = [g["task_id"] for g in gamma_json["gates"]]
    assert tasks == [*PIPELINE, "serve_shadow"]
    assert [s["task_id"] for s in gamma_json["pipeline"]] == [
        *PIPELINE[:4], "register", "promote", "serve_shadow"
    ]  # fmt: skip
    assert all(s["state"] == "success" for s in gamma_json["pipeline"])
    rows = re.findall(r"<tr><td><code>([a-z_]+)</code>", gamma_html)
    assert rows == tasks


def test_numbers_are_rounded_on_the_page_and_full_in_the_json(
    gamma_json: dict[str, Any], gamma_html: str
) -> None:
    shadow = next(g for g in gamma_json["gates"] if g["gate"] == "shadow_evaluation")
    assert shadow["metrics"]["candidate.accuracy"] == 0.7369477911646586
    assert "0.7369477911646586" not in gamma_html.replace('title="0.7369477911646586"', "")
    assert '<span class="num" title="0.7369477911646586">0.737</span>' in gamma_html
    assert "1,500" in gamma_html  # rows


def test_candidate_and_champion_side_by_side(gamma_json: dict[str, Any], gamma_html: str) -> None:
    rows = {r["metric"]: r for r in gamma_json["comparisons"]}
    assert set(rows) == {"accuracy", "roc_auc", "log_loss"}
    assert rows["accuracy"]["champion"] == 0.7108433734939759
    assert rows["log_loss"]["higher_is_better"] is False
    assert "Candidate vs champion" in gamma_html
    accuracy = re.search(r"<code>accuracy</code></td>(.*?)</tr>", gamma_html)
    assert accuracy, "no accuracy row"
    cells = accuracy.group(1)
    assert ">0.737<" in cells and ">0.711<" in cells and 'class="num better"' in cells
    log_loss = re.search(r"<code>log_loss</code></td>(.*?)</tr>", gamma_html)
    assert log_loss and 'class="num worse"' in log_loss.group(1)  # higher log loss is worse


def test_promotion_decision_in_words(gamma_json: dict[str, Any], gamma_html: str) -> None:
    decision = gamma_json["decision"]
    assert decision["state"] == "promoted" and decision["model"] == MODEL
    assert decision["record"]["status"] == "verified"
    assert decision["approval"]["by"] == "Rita Reviewer (rita)"
    assert decision["audit"]["status"] == "intact" and decision["audit"]["kind"] == "promotion"
    text = re.sub(r"<[^>]+>", "", gamma_html)
    assert f"{MODEL} v1 was promoted to @champion on 20" in text
    assert "the first champion" in text
    assert "approved by Rita Reviewer (rita) on 2026-01-01T00:02:00+00:00 — “looks fine”" in text
    assert re.search(r"#\d+ promotion at 20\d\d-", text)
    assert '"registered_model"' not in gamma_html  # the audit entry is rendered, not dumped
    assert "promotion.dsse.json" in gamma_html


def test_pictures_are_inline_svg_from_the_evidence(gamma_html: str) -> None:
    figures = re.findall(r'<svg [^>]*aria-label="([^"]*)"', gamma_html)
    assert "Candidate vs champion: relative change per metric" in figures
    assert "Drift per column (PSI against the reference)" in figures
    assert "Feature importance (share of mean |SHAP|)" in figures
    assert "selection_rate by region" in figures
    assert "Champion–shadow agreement over time" in figures
    assert "Prediction latency over time (ms)" in figures
    assert "&lt;svg onload=alert(3)&gt;" in gamma_html  # a hostile column name stays text
    assert "onload" not in re.sub(r"&lt;svg onload=alert\(3\)&gt;", "", gamma_html)
    assert "<script" not in gamma_html.lower() and 'href="http' not in gamma_html


def test_a_tampered_report_gives_no_picture(
    airflow_api: AirflowApi, review_runs: ReviewRuns
) -> None:
    url = f"/mlsecops/run?dag_id=review_alpha&run_id={quote(review_runs.alpha)}"
    html = airflow_api.get(url, "reviewer").text
    assert "<svg" not in html and "tampered" in html


def test_the_page_keeps_its_strict_csp(airflow_api: AirflowApi, review_runs: ReviewRuns) -> None:
    response = airflow_api.get(run_url(review_runs), "reviewer")
    policy = response.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'") and "script-src" not in policy
