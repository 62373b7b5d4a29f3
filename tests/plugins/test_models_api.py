"""The model inventory as the api-server mounts it: auth, live verification, alerts, audit."""

from __future__ import annotations

from typing import Any

import pytest

from tests.plugins.conftest import CHANGED_MODEL, MODEL, AirflowApi, ReviewRuns


def models_of(api: AirflowApi, user: str, query: str = "") -> dict[str, dict[str, Any]]:
    response = api.get(f"/mlsecops/api/models{query}", user)
    assert response.status_code == 200, response.text
    return {m["name"]: m for m in response.json()["models"]}


def alias(model: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in model["aliases"] if a["alias"] == name)


@pytest.mark.parametrize("path", ["/mlsecops/models", "/mlsecops/api/models"])
def test_the_inventory_needs_a_token(airflow_api: AirflowApi, path: str) -> None:
    assert airflow_api.get(path).status_code == 401


def test_champion_verified_and_changed_artifact_not(
    airflow_api: AirflowApi, review_runs: ReviewRuns
) -> None:
    models = models_of(airflow_api, "reviewer", "?refresh=1")
    good = alias(models[MODEL], "champion")
    assert good["version"] == "1" and good["verified"] is True and "reason" not in good
    assert good["key_id"] and good["checked_at"]
    changed = alias(models[CHANGED_MODEL], "champion")
    assert changed["verified"] is False
    assert changed["code"] == "model_changed", changed
    assert "model artifact changed" in changed["reason"]
    assert changed["record_uri"].endswith("/promotion/promotion.dsse.json")  # from the tags
    assert models[MODEL]["dag_id"] == "review_gamma"
    assert models[MODEL]["versions"][0]["run_id"] == review_runs.gamma


def test_last_run_alerts_and_audit_entries(
    airflow_api: AirflowApi, review_runs: ReviewRuns
) -> None:
    model = models_of(airflow_api, "reviewer")[MODEL]
    assert model["last_run"]["run_id"] == review_runs.gamma
    assert model["last_run"]["gates"]["data_validation"] == "warn"
    assert model["last_run"]["gates"]["promotion"] == "pass"
    assert any(a.startswith("drift: 2 column(s) drifted") for a in model["alerts"])
    sensed = "drift: review_beta/detect_drift found annual_income drifted from champion v1"
    assert any(a.startswith(sensed) for a in model["alerts"]), model["alerts"]
    (entry,) = model["audit"]
    assert entry["kind"] == "promotion" and entry["version"] == "1"
    assert (entry["dag_id"], entry["run_id"]) == ("review_gamma", review_runs.gamma)


def test_verification_is_cached_with_its_time_and_refreshed_on_request(
    airflow_api: AirflowApi, review_runs: ReviewRuns
) -> None:
    first = alias(models_of(airflow_api, "reviewer", "?refresh=1")[MODEL], "champion")
    again = alias(models_of(airflow_api, "reviewer")[MODEL], "champion")
    assert again["checked_at"] == first["checked_at"]
    fresh = alias(models_of(airflow_api, "reviewer", "?refresh=1")[MODEL], "champion")
    assert fresh["checked_at"] >= first["checked_at"] and fresh["verified"] is True


def test_users_see_only_models_of_dags_they_may_read(
    airflow_api: AirflowApi, restricted_api: AirflowApi, review_runs: ReviewRuns
) -> None:
    assert models_of(airflow_api, "outsider") == {}
    assert "review-model" not in airflow_api.get("/mlsecops/models", "outsider").text
    assert MODEL not in models_of(restricted_api, "alpha_only")  # review_gamma is not theirs
    restricted_acl = {"MLSECOPS_TEST_DAG_ACL": "alpha_only=review_alpha;reviewer=review_gamma"}
    with pytest.MonkeyPatch.context() as patch:  # a sensor's drift in an unreadable DAG: hidden
        patch.setenv(*next(iter(restricted_acl.items())))
        gamma_only = models_of(restricted_api, "reviewer")[MODEL]
    assert not any("review_beta" in a for a in gamma_only["alerts"])
    assert {MODEL, CHANGED_MODEL} <= set(models_of(restricted_api, "reviewer"))


def test_inventory_page_shows_verdicts_and_reasons(
    airflow_api: AirflowApi, review_runs: ReviewRuns
) -> None:
    response = airflow_api.get("/mlsecops/models", "reviewer")
    assert response.status_code == 200
    html = response.text
    assert MODEL in html and CHANGED_MODEL in html
    assert "not verified" in html and "model artifact changed" in html
    assert 'href="evidence?uri=' in html and "Audit entries" in html
    assert "<script" not in html.lower()
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
