"""The provider's Airflow plugin: evidence extra link and the gate review UI.

- ``operator_extra_links``: *Evidence report* on every gate task;
- ``fastapi_apps``: the gate review app at ``/mlsecops`` (pages and JSON, behind Airflow's
  auth manager; see :mod:`mlsecops_provider.plugins.gate_api`);
- ``external_views``: "Security gates" and "Model inventory" under *Browse*, and a
  "Security gates" tab on each DAG, DAG run and task instance, which frames the matching
  page of that app.

Airflow loads plugins in every task process too, so the FastAPI app (and Airflow's API
modules it needs) is built on the first request, not at import.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from mlsecops_provider.operators.links import EvidenceLink

URL_PREFIX = "/mlsecops"


class GateReviewApp:
    """ASGI app that builds the gate review FastAPI app on its first request."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from mlsecops_provider.plugins.gate_api import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


def _view(name: str, href: str, destination: str, url_route: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "href": f"{URL_PREFIX}{href}",
        "destination": destination,
        "url_route": url_route,
        **extra,
    }


class MLSecOpsPlugin(AirflowPlugin):
    name = "mlsecops"
    operator_extra_links = [EvidenceLink()]
    fastapi_apps = [{"app": GateReviewApp(), "url_prefix": URL_PREFIX, "name": "MLSecOps gates"}]
    external_views = [
        _view("Security gates", "/", "nav", "mlsecops-gates", category="browse"),
        _view("Model inventory", "/models", "nav", "mlsecops-models", category="browse"),
        _view("Security gates", "/?dag_id={DAG_ID}", "dag", "mlsecops-dag-gates"),
        _view(
            "Security gates",
            "/run?dag_id={DAG_ID}&run_id={RUN_ID}",
            "dag_run",
            "mlsecops-run-gates",
        ),
        _view(
            "Security gates",
            "/run?dag_id={DAG_ID}&run_id={RUN_ID}&task_id={TASK_ID}",
            "task_instance",
            "mlsecops-task-gates",
        ),
    ]
