"""The production path, started once per module: PostgreSQL, moto S3, MLflow server, Airflow.

``deployment`` starts every server on 127.0.0.1 (see ``deployment.py``), runs
``secure_training`` once through the REST API, and stops every server when the module ends.
A failing test gets the tail of every server log and of the task logs in its report.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.production.deployment import Deployment, start_deployment
from tests.production.servers import Processes, ServerError


@pytest.fixture(scope="module", autouse=True)
def restore_session_settings() -> Iterator[None]:
    """MLflow's ``set_tracking_uri`` also sets ``MLFLOW_TRACKING_URI``: put the session's
    settings back once the servers of this module are gone."""
    import os

    import mlflow

    environ = dict(os.environ)
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield
    os.environ.clear()
    os.environ.update(environ)
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    work = tmp_path_factory.mktemp("production")
    procs = Processes(log_dir=work / "logs")
    procs.log_dir.mkdir()
    try:
        try:
            started = start_deployment(procs, work)
        except ServerError:
            raise
        except Exception:
            print(procs.report())
            raise
        yield started
    finally:
        procs.stop_all()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed and "deployment" in getattr(item, "funcargs", {}):
        deployment: Deployment = item.funcargs["deployment"]  # type: ignore[attr-defined]
        report.sections.append(("server logs", deployment.report()))
    return report
