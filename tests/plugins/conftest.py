"""Fixtures for the gate review: real gate runs in the metadata DB, real Airflow auth.

``review_runs`` runs the two DAGs of ``tests/plugins/dags`` with ``dag.test()`` (their tasks
record gates through the real ``record_gate``), then rewrites one report to claim a better
verdict, as an attacker with write access to the evidence store would.
``airflow_api`` builds the api-server app with Airflow's ``create_app`` (so the plugin is
mounted exactly as the api-server mounts it) under the simple auth manager, with known
users and passwords; tokens come from the auth manager's own ``POST /auth/token``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REVIEW_DAGS = Path(__file__).parent / "dags"
BUNDLE = "mlsecops-review-tests"
PASSWORDS = {"reviewer": "review-Pa55", "outsider": "outside-Pa55", "alpha_only": "alpha-Pa55"}
USERS = "reviewer:viewer,outsider:,alpha_only:viewer"  # outsider has no role: no DAG access
DAG_ACL = "alpha_only=review_alpha"
JWT_SECRET = "mlsecops-test-" + "s" * 64


MODEL = "review-model"  # review_gamma's champion, verified
CHANGED_MODEL = "review-changed"  # review_gamma's champion whose artifact the tests change


@dataclass(frozen=True)
class ReviewRuns:
    alpha: str
    beta: str
    tampered_uri: str
    gamma: str = ""
    gamma_changed: str = ""


def bundle_config(extra_bundle: str, path: Path) -> str:
    """The default dags-folder bundle plus a local bundle for ``path``."""
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    return json.dumps(
        [
            {"name": "dags-folder", "classpath": local, "kwargs": {}},
            {"name": extra_bundle, "classpath": local, "kwargs": {"path": str(path)}},
        ]
    )


@pytest.fixture(scope="session")
def review_runs(airflow_db: Path) -> ReviewRuns:
    """Both review DAGs run once (in a bundle of their own: dag.test() parses only them)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", bundle_config(BUNDLE, REVIEW_DAGS)
        )
        DagBundlesManager().sync_bundles_to_db()
        bag = BundleDagBag(dag_folder=str(REVIEW_DAGS), bundle_path=REVIEW_DAGS, bundle_name=BUNDLE)
        assert not bag.import_errors, bag.import_errors
        sync_bag_to_db(bag, BUNDLE, None)
        alpha = bag.get_dag("review_alpha").test()
        beta = bag.get_dag("review_beta").test()
        gamma = bag.get_dag("review_gamma").test(run_conf={"model_name": MODEL})
        changed = bag.get_dag("review_gamma").test(run_conf={"model_name": CHANGED_MODEL})
    assert str(beta.state) == "success"
    for run in (gamma, changed):
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        assert str(run.state) == "success", states
    change_champion_artifact(CHANGED_MODEL)
    states = {ti.task_id: str(ti.state) for ti in alpha.get_task_instances()}
    assert states["blocked"] == "failed" and states["tamper_me"] == "success", states
    uri = _report_uri("review_alpha", alpha.run_id, "model_scan")
    path = Path(uri.removeprefix("file://"))
    report = json.loads(path.read_text())
    report["result"].update(verdict="pass", message="all clear")
    path.write_text(json.dumps(report, indent=2, sort_keys=True))
    return ReviewRuns(alpha.run_id, beta.run_id, uri, gamma.run_id, changed.run_id)


def change_champion_artifact(name: str) -> None:
    """Append a byte to a file of ``name@champion``'s artifacts, as a swapped model would."""
    import mlflow
    from mlflow import MlflowClient

    version = MlflowClient().get_model_version_by_alias(name, "champion")
    model_id = str(version.source).rsplit("/", 1)[-1]
    root = Path(mlflow.get_logged_model(model_id).artifact_location.removeprefix("file://"))
    target = next(p for p in sorted(root.rglob("*")) if p.is_file() and p.suffix == ".skops")
    target.write_bytes(target.read_bytes() + b"\0")


def _report_uri(dag_id: str, run_id: str, gate: str) -> str:
    from mlsecops_provider.core.evidence import EvidenceStore
    from mlsecops_provider.core.settings import Settings

    return EvidenceStore(Settings.from_env().evidence_uri).uri_for(
        dag_id, run_id, gate, "report.json"
    )


def auth_environment(tmp: Path, auth_manager: str | None = None) -> dict[str, str]:
    """Simple auth manager users with known passwords (and, optionally, another manager)."""
    passwords = tmp / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    env = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": USERS,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
        "MLSECOPS_TEST_DAG_ACL": DAG_ACL,
    }
    if auth_manager:
        env["AIRFLOW__CORE__AUTH_MANAGER"] = auth_manager
    return env


class AirflowApi:
    """A TestClient on Airflow's api-server app, with logins through the auth manager."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        if user not in self._tokens:
            response = self.client.post(
                "/auth/token", json={"username": user, "password": PASSWORDS[user]}
            )
            assert response.status_code == 201, response.text
            self._tokens[user] = response.json()["access_token"]
        return self._tokens[user]

    def get(self, path: str, user: str | None = None, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if user:
            headers["Authorization"] = f"Bearer {self.token(user)}"
        return self.client.get(path, headers=headers, **kwargs)


def _api(tmp: Path, auth_manager: str | None) -> Iterator[AirflowApi]:
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as patch:
        for key, value in auth_environment(tmp, auth_manager).items():
            patch.setenv(key, value)
        purge_cached_app()
        with TestClient(create_app(apps="core")) as client:
            yield AirflowApi(client)
        purge_cached_app()


@pytest.fixture(scope="module")
def airflow_api(
    review_runs: ReviewRuns, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowApi]:
    """The api-server app under the simple auth manager."""
    yield from _api(tmp_path_factory.mktemp("auth"), None)


@pytest.fixture(scope="module")
def restricted_api(
    review_runs: ReviewRuns, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowApi]:
    """The api-server app under a simple auth manager with per-user DAG allow-lists."""
    manager = "tests.plugins.restricted_auth.DagListAuthManager"
    yield from _api(tmp_path_factory.mktemp("auth"), manager)
