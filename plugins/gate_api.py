"""The gate review FastAPI app, mounted by the Airflow api-server at ``/mlsecops``.

Every route depends on Airflow's auth manager: no (or an expired) token is 401, and only the
DAGs the user may read (runs and XComs) are shown; naming another DAG is 403. Routes:

- ``GET /`` — "Security gates": the latest runs of each DAG with gates (``dag_id``,
  ``verdict`` and ``runs`` filter them);
- ``GET /run?dag_id=&run_id=[&task_id=]`` — one run with all findings and report details;
- ``GET /api/gates?dag_id=&run_id=&task_id=&verdict=&runs=`` — the same data as JSON;
- ``GET /models`` and ``GET /api/models[?refresh=1]`` — the model inventory: models registered
  by DAGs the user may read, each alias re-checked with verify-promotion (see
  :mod:`mlsecops_provider.plugins.inventory`);
- ``GET /evidence?uri=&sha256=`` — one evidence file, served only after its digest matched,
  and only from the configured evidence store, in the folder of a DAG the user may read.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlsecops_provider.core.errors import DigestMismatchError, NotFoundError, StorageError
from mlsecops_provider.core.evidence import EvidenceStore
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.plugins import (
    gate_data,
    gate_evidence,
    gate_pages,
    inventory,
    models_pages,
    run_details,
    run_pages,
    serving_log,
)

log = logging.getLogger(__name__)
SHA256 = re.compile(r"(sha256:)?[0-9a-f]{64}")
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
EVIDENCE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

router = APIRouter()


def s3_factory() -> Any:
    """An S3 client factory from ``MLSECOPS_AWS_CONN_ID``, or None (boto3's defaults)."""
    conn_id = os.environ.get("MLSECOPS_AWS_CONN_ID") or None
    if not conn_id:
        return None

    def factory() -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=conn_id).get_conn()

    return factory


def evidence_store() -> EvidenceStore:
    """The configured evidence store: ``MLSECOPS_EVIDENCE_URI`` (S3: ``MLSECOPS_AWS_CONN_ID``)."""
    settings = Settings.from_env()
    factory = s3_factory() if settings.evidence_uri.startswith("s3://") else None
    return EvidenceStore(settings.evidence_uri, factory)


def may_read_dag(user: Any, dag_id: str, team_name: str | None = None) -> bool:
    """Whether the auth manager lets this user read the DAG's runs and XComs."""
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )

    return get_auth_manager().is_authorized_dag(
        method="GET",
        access_entity=DagAccessEntity.XCOM,
        details=DagDetails(id=dag_id, team_name=team_name),
        user=user,
    )


def readable_dags(user: GetUserDep, session: SessionDep) -> set[str]:
    """DAGs with gates whose runs and XComs this user may read."""
    from airflow.models.dag import DagModel

    authorized = get_auth_manager().get_authorized_dag_ids(user=user, method="GET", session=session)
    candidates = gate_data.gate_dag_ids(session) & authorized
    teams = DagModel.get_dag_id_to_team_name_mapping(list(candidates), session=session)
    return {d for d in candidates if may_read_dag(user, d, teams.get(d))}


ReadableDep = Annotated[set[str], Depends(readable_dags)]
StoreDep = Annotated[EvidenceStore, Depends(evidence_store)]
RunsQuery = Annotated[int, Query(ge=1, le=50, description="runs per DAG")]


def _selected_dags(readable: set[str], dag_id: str | None, user: Any) -> set[str]:
    """All readable gate DAGs, or the one named (403 unless the user may read it)."""
    if not dag_id:
        return readable
    if dag_id not in readable and not may_read_dag(user, dag_id, _team(dag_id)):
        raise HTTPException(403, f"DAG {dag_id!r} is not readable by this user")
    return {dag_id}


def _team(dag_id: str) -> str | None:
    from airflow.models.dag import DagModel

    return DagModel.get_team_name(dag_id)


def _check_verdict(verdict: str | None) -> str | None:
    if verdict and verdict not in gate_evidence.VERDICT_CHOICES:
        raise HTTPException(
            400, f"verdict must be one of {', '.join(gate_evidence.VERDICT_CHOICES)}"
        )
    return verdict or None


def _collect(
    session: Any,
    store: EvidenceStore,
    dags: set[str],
    *,
    run_id: str | None = None,
    task_id: str | None = None,
    per_dag: int = 5,
    with_details: bool = False,
) -> list[gate_data.RunView]:
    from airflow.models.dagbag import DBDagBag

    dag_runs = gate_data.latest_runs(session, dags, 1 if run_id else per_dag, run_id)
    bag = DBDagBag(load_op_links=False)
    return gate_data.collect_runs(
        session,
        store,
        dag_runs,
        task_id=task_id,
        with_details=with_details,
        task_order=lambda run: run_details.task_order(session, run, bag),
    )


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=HTML_HEADERS)


@router.get("/", response_class=HTMLResponse, summary="Security gates")
def overview(
    user: GetUserDep,
    readable: ReadableDep,
    session: SessionDep,
    store: StoreDep,
    dag_id: str | None = None,
    verdict: str | None = None,
    runs: RunsQuery = 5,
) -> HTMLResponse:
    chosen = _check_verdict(verdict)
    found = _collect(session, store, _selected_dags(readable, dag_id, user), per_dag=runs)
    html = gate_pages.render_overview(
        gate_data.filter_verdict([r for r in found if r.gates], chosen),
        dag_ids=readable,
        dag_filter=dag_id,
        verdict_filter=chosen,
        user=user.get_name(),
    )
    return _html(html)


@router.get("/run", response_class=HTMLResponse, summary="Gates of one DAG run")
def run_page(
    user: GetUserDep,
    readable: ReadableDep,
    session: SessionDep,
    store: StoreDep,
    dag_id: str,
    run_id: str,
    task_id: str | None = None,
) -> HTMLResponse:
    found = _collect(
        session,
        store,
        _selected_dags(readable, dag_id, user),
        run_id=run_id,
        task_id=task_id or None,
        with_details=True,
    )
    if not found:
        raise HTTPException(404, f"DAG run {run_id!r} of {dag_id!r} not found")
    decision = run_details.promotion_decision(
        found[0], store, run_details.pinned_keys, s3_factory()
    )
    logs = serving_log.reader(store.root_uri, s3_factory())
    return _html(run_pages.render_run(found[0], task_id, user.get_name(), decision, logs))


@router.get("/api/gates", summary="Gate results as JSON")
def api_gates(
    user: GetUserDep,
    readable: ReadableDep,
    session: SessionDep,
    store: StoreDep,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    verdict: str | None = None,
    runs: RunsQuery = 5,
) -> dict[str, Any]:
    chosen = _check_verdict(verdict)
    found = _collect(
        session,
        store,
        _selected_dags(readable, dag_id, user),
        run_id=run_id or None,
        task_id=task_id or None,
        per_dag=runs,
        with_details=bool(run_id),
    )
    found = gate_data.filter_verdict([r for r in found if r.gates or run_id], chosen)
    listed = [r.to_dict(with_details=bool(run_id)) for r in found]
    if run_id:  # one run: the decision and the comparisons, full values
        for view, data in zip(found, listed, strict=True):
            decision = run_details.promotion_decision(
                view, store, run_details.pinned_keys, s3_factory()
            )
            data["decision"] = decision.to_dict() if decision else None
            data["comparisons"] = run_details.comparisons(view)
    return {"runs": listed}


def _inventory(
    user: Any, session: Any, store: EvidenceStore, refresh: bool
) -> tuple[list[inventory.ModelView], str]:
    """The models this user may see, with last runs, alerts and audit entries."""
    from mlflow import MlflowClient

    from mlsecops_provider.core.promotion.audit_log import AuditLog, default_log_uri

    settings = Settings.from_env()
    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    allowed: dict[str, bool] = {}

    def may_read(dag_id: str) -> bool:
        if dag_id not in allowed:
            allowed[dag_id] = may_read_dag(user, dag_id, _team(dag_id))
        return allowed[dag_id]

    s3 = s3_factory()

    def verify(name: str, alias: str) -> Any:
        return inventory.verify_alias(name, alias, s3)

    models = inventory.list_models(client, may_read, verify, refresh=refresh)
    for model in models:
        newest = next((v for v in model.versions if v.run_id), None)
        run_id = newest.run_id if newest else None
        found = _collect(session, store, {model.dag_id}, run_id=run_id) if run_id else []
        latest = _collect(session, store, {model.dag_id}, per_dag=1)
        model.last_run = found[0] if found else (latest[0] if latest else None)
        model.alerts = inventory.alerts(model.last_run)
        if latest and model.last_run is not None and latest[0].run_id != model.last_run.run_id:
            more = inventory.alerts(latest[0])
            model.alerts += [f"latest run {latest[0].run_id}: {a}" for a in more]
    report = AuditLog(default_log_uri(store.root_uri), s3_factory()).verify()
    sensed = inventory.sensor_drift(session, may_read)
    for model in models:
        model.audit = inventory.audit_entries(report.entries, model.name)
        champion = next((a.version for a in model.aliases if a.alias == "champion"), None)
        model.alerts += inventory.drift_alerts(sensed, model.name, champion)
    return models, "" if report.ok else f"chain broken: {report.problem}"


@router.get("/models", response_class=HTMLResponse, summary="Model inventory")
def models_page(
    user: GetUserDep, session: SessionDep, store: StoreDep, refresh: bool = False
) -> HTMLResponse:
    models, problem = _inventory(user, session, store, refresh)
    return _html(models_pages.render_models(models, user.get_name(), problem))


@router.get("/api/models", summary="Model inventory as JSON")
def api_models(
    user: GetUserDep, session: SessionDep, store: StoreDep, refresh: bool = False
) -> dict[str, Any]:
    models, problem = _inventory(user, session, store, refresh)
    return {"models": [m.to_dict() for m in models], "audit_log_problem": problem or None}


@router.get("/evidence", summary="One evidence file, digest verified")
def evidence(
    readable: ReadableDep,
    store: StoreDep,
    uri: str,
    sha256: Annotated[str, Query(pattern=SHA256.pattern)],
) -> Response:
    try:
        segment = gate_evidence.evidence_dag_segment(store.root_uri, uri)
    except ValueError as err:
        raise HTTPException(400, str(err)) from err
    if gate_evidence.dag_for_segment(segment, readable) is None:
        raise HTTPException(403, "this evidence belongs to no DAG readable by this user")
    # Errors name only what the client sent: never the actual digest, a local path or the
    # store's root (the log has the details).
    try:
        data = store.read_bytes(uri, sha256)
    except DigestMismatchError as err:
        log.warning("evidence request: %s", err)
        raise HTTPException(409, f"tampered: {uri} does not have sha256 {sha256}") from err
    except NotFoundError as err:
        log.warning("evidence request: %s", err)
        raise HTTPException(404, f"{uri}: no such evidence") from err
    except StorageError as err:
        log.warning("evidence request: %s", err)
        raise HTTPException(502, "the evidence store could not be read") from err
    name = uri.rsplit("/", 1)[-1]
    headers = {**EVIDENCE_HEADERS, "Content-Disposition": f'inline; filename="{name}"'}
    return Response(data, media_type=_media_type(name, data), headers=headers)


def _media_type(name: str, data: bytes) -> str:
    if name.endswith(".json"):
        return "application/json"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


async def _http_error(request: Request, exc: Exception) -> Response:
    """JSON for the API and non-browsers; a small HTML page (with a login link) for pages."""
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    wants_html = "text/html" in request.headers.get("accept", "")
    if not wants_html or "/api/" in request.url.path:
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
    login = None
    if exc.status_code == 401:
        login = get_auth_manager().get_url_login(next_url=str(request.url))
    return _html(gate_pages.render_error(exc.status_code, detail, login), exc.status_code)


def create_app() -> FastAPI:
    """The sub-application the plugin registers under ``/mlsecops``."""
    app = FastAPI(
        title="MLSecOps gate review",
        description="Security gate results of DAG runs, behind Airflow's auth manager.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(router)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    return app
