"""The model inventory: registered models, their aliases and versions, checked live.

A model version is shown only when the user may read the DAG that registered it (the
version's ``mlsecops.dag_id`` tag, else its MLflow run's); a model is listed when at least
one of its versions is. A version with no DAG is shown to nobody (fail closed).

Every alias is re-checked with :func:`mlsecops_provider.core.promotion.verify.verify_promotion`
— the function ``mlsecops verify-promotion`` runs — with the policy's pinned keys and the
audit log in the evidence store. Results are cached per (model, alias, version) for
``MLSECOPS_INVENTORY_CACHE_SECONDS`` (default 300) and shown with the time of the check;
``refresh`` re-checks. A check that cannot decide is ``verified: false`` with the reason.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlsecops_provider.core.errors import MLSecOpsError
from mlsecops_provider.core.evidence import utcnow

log = logging.getLogger(__name__)
TAG_DAG_ID = "mlsecops.dag_id"  # core.tracking.lineage.TAG_DAG_ID, set on versions by register
TAG_RUN_ID = "mlsecops.run_id"
WATCHED_ALIASES = ("champion", "previous-champion", "shadow")
MAX_VERSIONS = 10
MAX_AUDIT_ENTRIES = 5
ALERT_GATES = (
    "drift",
    "serving",
    "warmup",
    "monitor",
)  # gate names whose warn/fail is an open alert
Verifier = Callable[[str, str], Mapping[str, Any]]


@dataclass(frozen=True)
class AliasView:
    alias: str
    version: str
    verified: bool
    reason: str
    code: str
    checked_at: str
    key_id: str | None = None
    record_uri: str | None = None
    record_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        if self.verified:
            data.pop("reason")
        return data


@dataclass(frozen=True)
class VersionView:
    version: str
    dag_id: str
    run_id: str | None
    created: str | None
    aliases: list[str]
    gates: dict[str, str]  # mlsecops.gate.<gate> tags: verdicts at registration

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ModelView:
    name: str
    description: str
    aliases: list[AliasView]
    versions: list[VersionView]
    dag_id: str
    last_run: Any = None  # gate_data.RunView of the DAG's latest run
    alerts: list[str] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        run = self.last_run
        return {
            "name": self.name,
            "description": self.description,
            "dag_id": self.dag_id,
            "aliases": [a.to_dict() for a in self.aliases],
            "versions": [v.to_dict() for v in self.versions],
            "last_run": None
            if run is None
            else {
                "dag_id": run.dag_id,
                "run_id": run.run_id,
                "state": run.state,
                "gates": {g.gate: g.verdict for g in run.gates},
            },
            "alerts": self.alerts,
            "audit": self.audit,
        }


class VerificationCache:
    """``(model, alias, version) -> (result, checked_at)`` for ``ttl`` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str, str], tuple[float, dict[str, Any], str]] = {}

    def get(
        self, key: tuple[str, str, str], compute: Callable[[], Mapping[str, Any]], refresh: bool
    ) -> tuple[dict[str, Any], str]:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
        if hit and not refresh and now - hit[0] < self.ttl:
            return hit[1], hit[2]
        result, checked_at = dict(compute()), utcnow()
        with self._lock:
            self._items[key] = (now, result, checked_at)
        return result, checked_at


CACHE = VerificationCache(float(os.environ.get("MLSECOPS_INVENTORY_CACHE_SECONDS") or 300))


def verify_alias(name: str, alias: str, s3: Any = None) -> dict[str, Any]:
    """``mlsecops verify-promotion`` for ``name@alias`` with every pinned key; its result.

    ``s3``: the S3 client factory for records, model signatures and the audit log on S3.
    """
    from mlsecops_provider.core.promotion.audit_log import default_log_uri
    from mlsecops_provider.core.promotion.verify import verify_promotion
    from mlsecops_provider.core.settings import Settings
    from mlsecops_provider.plugins.run_details import pinned_keys

    settings = Settings.from_env()
    try:
        keys = list(pinned_keys().values())
    except MLSecOpsError as err:
        return {"verified": False, "code": "error", "reason": f"could not check: {err}"}
    results = []
    for key in keys:
        try:
            check = verify_promotion(
                name,
                alias,
                key.pem,
                settings.tracking_uri,
                registry_uri=settings.registry_uri,
                s3_client_factory=s3,
                audit_log_uri=default_log_uri(settings.evidence_uri),
            )
        except MLSecOpsError as err:  # the CLI's exit 2: could not decide, so not verified
            return {"verified": False, "code": "error", "reason": f"could not check: {err}"}
        if check.verified:
            return check.to_dict()
        results.append(check.to_dict())
    # the key that signed it, else the first reason
    return next((r for r in results if r.get("code") != "wrong_key"), results[0])


def version_dag(client: Any, version: Any, cache: dict[str, str | None]) -> str | None:
    """The DAG that registered a version: its tag, else its MLflow run's tag."""
    tags = dict(version.tags or {})
    if tags.get(TAG_DAG_ID):
        return str(tags[TAG_DAG_ID])
    run_id = getattr(version, "run_id", None)
    if not run_id:
        return None
    if run_id not in cache:
        try:
            cache[run_id] = client.get_run(run_id).data.tags.get(TAG_DAG_ID)
        except Exception as err:  # MLflow raises several types for a missing run
            log.warning("run %s of %s v%s: %s", run_id, version.name, version.version, err)
            cache[run_id] = None
    return cache[run_id]


def _versions(client: Any, name: str) -> list[Any]:
    from mlflow.exceptions import MlflowException

    if "'" in name or "\\" in name:  # no filter-string escaping in MLflow: skip, do not guess
        log.warning("registered model %r: name cannot be queried safely", name)
        return []
    try:
        found = client.search_model_versions(f"name = '{name}'", max_results=200)
    except MlflowException as err:
        log.warning("versions of %s: %s", name, err)
        return []
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def list_models(
    client: Any,
    may_read: Callable[[str], bool],
    verifier: Verifier = verify_alias,
    refresh: bool = False,
) -> list[ModelView]:
    """Every registered model with a version the user may see."""
    runs: dict[str, str | None] = {}
    models = []
    for model in _registered_models(client):
        seen = []
        for version in _versions(client, model.name):
            dag_id = version_dag(client, version, runs)
            if dag_id and may_read(dag_id):
                seen.append((version, dag_id))
        if seen:
            models.append(_model_view(model, seen, verifier, refresh))
    return models


def _registered_models(client: Any) -> list[Any]:
    found: list[Any] = []
    token = None
    while True:
        page = client.search_registered_models(max_results=100, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return sorted(found, key=lambda m: m.name)


def _model_view(
    model: Any, seen: list[tuple[Any, str]], verifier: Verifier, refresh: bool
) -> ModelView:
    aliases_of: dict[str, list[str]] = {}
    for alias, version in dict(model.aliases or {}).items():
        aliases_of.setdefault(str(version), []).append(str(alias))
    visible = {str(v.version) for v, _ in seen}
    versions = [
        VersionView(
            version=str(v.version),
            dag_id=dag_id,
            run_id=dict(v.tags or {}).get(TAG_RUN_ID),
            created=_ms_iso(getattr(v, "creation_timestamp", None)),
            aliases=sorted(aliases_of.get(str(v.version), [])),
            gates={
                k.removeprefix("mlsecops.gate."): str(val)
                for k, val in dict(v.tags or {}).items()
                if k.startswith("mlsecops.gate.")
            },
        )
        for v, dag_id in seen[:MAX_VERSIONS]
    ]
    tags = {str(v.version): dict(v.tags or {}) for v, _ in seen}
    aliases = [
        _alias_view(model.name, alias, str(version), verifier, refresh, tags[str(version)])
        for alias, version in sorted(dict(model.aliases or {}).items(), key=_alias_rank)
        if str(version) in visible
    ]
    return ModelView(
        name=str(model.name),
        description=str(getattr(model, "description", "") or ""),
        aliases=aliases,
        versions=versions,
        dag_id=seen[0][1],
    )


def _alias_rank(item: tuple[str, Any]) -> tuple[int, str]:
    alias = item[0]
    return (WATCHED_ALIASES.index(alias) if alias in WATCHED_ALIASES else 99, alias)


def _alias_view(
    name: str, alias: str, version: str, verifier: Verifier, refresh: bool, tags: dict[str, str]
) -> AliasView:
    """The alias checked (or its cached check); the record the version's tags name as a link
    when the check did not get that far (the link serves it only if its digest matches)."""
    from mlsecops_provider.core.promotion.record import TAG_EVIDENCE_SHA256, TAG_EVIDENCE_URI

    result, checked_at = CACHE.get((name, alias, version), lambda: verifier(name, alias), refresh)
    verified = bool(result.get("verified"))
    record_uri = result.get("evidence_uri") or tags.get(TAG_EVIDENCE_URI)
    record_sha256 = result.get("evidence_sha256") or tags.get(TAG_EVIDENCE_SHA256)
    return AliasView(
        alias=alias,
        version=str(result.get("version") or version),
        verified=verified,
        reason=str(result.get("reason") or ("verified" if verified else "not verified")),
        code=str(result.get("code") or ("ok" if verified else "error")),
        checked_at=checked_at,
        key_id=result.get("key_id"),
        record_uri=str(record_uri) if record_uri else None,
        record_sha256=str(record_sha256) if record_sha256 else None,
    )


def _ms_iso(value: Any) -> str | None:
    from datetime import UTC, datetime

    if not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value / 1000, UTC).isoformat(timespec="seconds")


def alerts(run: Any) -> list[str]:
    """Open drift or serving alerts in a run: drift found by any verified gate, or a warn/fail
    of a drift, serving or monitoring gate."""
    found = []
    for gate in getattr(run, "gates", []):
        drifted = next(
            (v for k, v in gate.metrics.items() if "drift" in k and "drifted" in k), None
        )
        if isinstance(drifted, int | float) and not isinstance(drifted, bool) and drifted > 0:
            found.append(f"drift: {drifted:g} column(s) drifted ({gate.gate} {gate.verdict})")
        elif gate.verdict != "pass" and any(word in gate.gate for word in ALERT_GATES):
            found.append(f"{gate.gate}: {gate.verdict} — {gate.message or gate.detail}")
    return found


def audit_entries(entries: list[Any], name: str) -> list[dict[str, Any]]:
    """The newest audit entries about this model (promotions, refusals, rollbacks)."""
    mine = [e for e in entries if dict(e.details).get("registered_model") == name]
    out = []
    for entry in reversed(mine[-MAX_AUDIT_ENTRIES:]):
        details = dict(entry.details)
        dag_id, _, run_id = str(details.get("invocation") or "").partition("/")
        out.append(
            {
                "seq": entry.seq,
                "time": entry.time,
                "kind": entry.kind,
                "hash": entry.hash,
                "version": details.get("version") or details.get("to_version"),
                "alias": details.get("alias"),
                "dag_id": dag_id or None,
                "run_id": run_id or None,
            }
        )
    return out


def sensor_drift(session: Any, may_read: Callable[[str], bool], limit: int = 200) -> list[Any]:
    """Drift a sensor reported (``DriftSensor``'s XCom: ``reason: drift``, ``drifted_columns``
    and the ``reference`` model version), newest first, from DAGs the user may read."""
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.xcom import XComModel
    from sqlalchemy import and_, select

    join = and_(
        TI.dag_id == XComModel.dag_id,
        TI.run_id == XComModel.run_id,
        TI.task_id == XComModel.task_id,
        TI.map_index == XComModel.map_index,
    )
    stmt = (
        select(XComModel)
        .join(TI, join)
        .where(XComModel.key == "return_value", TI.operator.like("%Sensor"))
        .order_by(XComModel.timestamp.desc())
        .limit(limit)
    )
    found = []
    for row in session.scalars(stmt):
        value = XComModel.deserialize_value(row)
        if not (isinstance(value, Mapping) and value.get("reason") == "drift"):
            continue
        if isinstance(value.get("reference"), Mapping) and may_read(row.dag_id):
            found.append((row, value))
    return found


def drift_alerts(found: list[Any], name: str, champion: str | None) -> list[str]:
    """Sensor drift against this model's current champion (newest report only)."""
    for row, value in found:
        reference = value["reference"]
        if reference.get("model_name") != name or str(reference.get("version")) != champion:
            continue
        columns = ", ".join(str(c) for c in value.get("drifted_columns") or []) or "?"
        when = row.timestamp.isoformat(timespec="seconds") if row.timestamp else "?"
        return [
            f"drift: {row.dag_id}/{row.task_id} found {columns} drifted from champion "
            f"v{champion}'s training data at {when}"
        ]
    return []
