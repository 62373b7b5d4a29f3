"""One CeleryExecutor deployment per module: Redis, PostgreSQL, moto S3, MLflow, Airflow and
two Celery workers on 127.0.0.1 (see ``scaleout.py``). A failing test gets the task states of
every run the module triggered, the task logs of both workers and every server log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.production.celery.scaleout import CeleryDeployment, start_celery_deployment
from tests.production.servers import Processes, ServerError


@pytest.fixture(scope="module")
def celery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryDeployment]:
    work = tmp_path_factory.mktemp("celery")
    procs = Processes(log_dir=work / "logs")
    procs.log_dir.mkdir()
    try:
        try:
            started = start_celery_deployment(procs, work)
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
    if report.when != "teardown" and report.failed and "celery" in getattr(item, "funcargs", {}):
        deployment: CeleryDeployment = item.funcargs["celery"]  # type: ignore[attr-defined]
        report.sections.append(("server logs", deployment.report()))
    return report
