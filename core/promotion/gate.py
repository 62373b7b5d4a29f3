"""The signed promotion gate, and rollback.

:func:`promote` moves a registry alias (``champion``) to a candidate version only when every
required gate of the run passed (reports read back by digest), the provenance statement is
intact and names the same model bytes, an approval (if required) was given, and the evidence
bundle (in-toto Statement in a DSSE envelope) and the model (OpenSSF model-signing) are signed
and verify with a key pinned in the policy. The move is compare-and-set: the champion read at
the start is re-read right before the move and after it; if it changed, the gate fails. The
old champion keeps ``previous-champion`` for :func:`rollback`. Every promotion, refusal and
rollback is appended to the hash-chained audit log.

Limit: the MLflow registry has no atomic compare-and-set for aliases; between the re-read and
the write a concurrent writer can still slip in (milliseconds). The read after the write
catches most such races; ``max_active_runs=1`` per DAG closes the rest.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import LineageError, MLSecOpsError
from mlsecops_provider.core.evidence import EvidenceStore, GateResult, Verdict, utcnow
from mlsecops_provider.core.hashing import hash_path
from mlsecops_provider.core.manifest import DEFAULT_IGNORE
from mlsecops_provider.core.promotion.audit_log import AuditEntry, AuditLog, default_log_uri
from mlsecops_provider.core.promotion.checks import (
    PromotionRequest,
    ProvenanceRef,
    SigningPolicy,
    check_approval,
    check_gates,
    check_provenance,
    policy_digest,
)
from mlsecops_provider.core.promotion.move import MovePlan, move_alias
from mlsecops_provider.core.promotion.record import (
    TAG_ALIAS,
    TAG_EVIDENCE_SHA256,
    TAG_EVIDENCE_URI,
    TAG_KEY_ID,
    TAG_MODEL_SHA256,
    TAG_PREVIOUS,
)
from mlsecops_provider.core.promotion.seal import Sealed, audit_head, check_sealed, seal
from mlsecops_provider.core.promotion.signing import PublicKey, SigningKey
from mlsecops_provider.core.promotion.subjects import Scope
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import S3ClientFactory
from mlsecops_provider.core.tracking.registry import alias_version, download_model

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)
GATE = "promotion"


@dataclass
class PromotionEnv:
    """Where the gate writes: this run's evidence, the audit log, the registry."""

    settings: Settings
    store: EvidenceStore
    audit: AuditLog
    dag_id: str
    run_id: str
    before_move: Callable[[], None] | None = None  # hook between the first read and the re-read

    @classmethod
    def create(
        cls, settings: Settings, dag_id: str, run_id: str, s3: S3ClientFactory | None = None
    ) -> PromotionEnv:
        audit = AuditLog(default_log_uri(settings.evidence_uri), s3)
        return cls(settings, EvidenceStore(settings.evidence_uri, s3), audit, dag_id, run_id)

    @cached_property
    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        return MlflowClient(self.settings.tracking_uri, self.settings.registry_uri)

    def uri(self, name: str) -> str:
        return self.store.uri_for(self.dag_id, self.run_id, GATE, name)


@dataclass
class _State:
    """What one promotion attempt knows; refusals and the result are built from it."""

    request: PromotionRequest
    signing: SigningPolicy
    champion: str | None
    previous: str | None
    started: str

    @property
    def name(self) -> str:
        return self.request.candidate.name

    @property
    def version(self) -> str:
        return self.request.candidate.version


def promote(
    request: PromotionRequest, key: SigningKey, env: PromotionEnv
) -> tuple[GateResult, dict[str, Any]]:
    """Run the gate; a refusal is verdict ``fail`` (audited), an error raises (audited)."""
    signing = SigningPolicy.from_policy(request.policy)
    trusted = signing.trusted_keys(env.settings.home, f"{request.policy.source}: signing")
    name = request.candidate.name
    state = _State(
        request,
        signing,
        alias_version(env.client, name, signing.alias),
        alias_version(env.client, name, signing.previous_alias),
        utcnow(),
    )
    try:
        return _promote(state, key, trusted, env)
    except MLSecOpsError as err:
        try:
            _refuse(state, env, [f"error: {type(err).__name__}: {err}"])
        except MLSecOpsError as audit_err:
            log.error("could not audit the refusal: %s", audit_err)
        raise


def _promote(
    state: _State, key: SigningKey, trusted: Mapping[str, PublicKey], env: PromotionEnv
) -> tuple[GateResult, dict[str, Any]]:
    request, signing = state.request, state.signing
    provenance, provenance_reasons = check_provenance(request.provenance, env.store)
    scope = None
    if provenance is not None:
        scope = Scope(
            env.dag_id,
            env.run_id,
            provenance.model_sha256,
            provenance.datasets,
            _candidate_run(env, state),
        )
    gates, reasons = check_gates(
        request.policy, request.gate_summaries, env.store, signing.block_on_warn, scope
    )
    required = (
        signing.require_approval if request.require_approval is None else request.require_approval
    )
    reasons += provenance_reasons + check_approval(request.approval, required)
    if state.champion == state.version:
        reasons.append(f"version {state.version} is already {state.name}@{signing.alias}")
    if key.key_id not in trusted:
        reasons.append(f"signing key {key.key_id} is not pinned in the policy's signing section")
    if reasons or provenance is None:
        return _refuse(state, env, reasons, gates=gates)
    with tempfile.TemporaryDirectory(prefix="mlsecops-promote-") as tmp:
        model_dir = download_model(env.settings, request.candidate.source_uri, f"{tmp}/model")
        manifest = hash_path(model_dir)
        model_sha256 = manifest.root_digest
        if manifest.ignored:
            reason = (
                "model folder has paths the digest does not cover (ignored names): "
                + ", ".join(manifest.ignored)
            )
            return _refuse(state, env, [reason], gates=gates)
        if model_sha256 != provenance.model_sha256:
            reason = (
                f"model changed since provenance: sha256 {model_sha256}, "
                f"statement says {provenance.model_sha256}"
            )
            return _refuse(state, env, [reason], gates=gates)
        signed = _seal(state, env, key, model_dir, model_sha256, gates, provenance)
        problem = check_sealed(
            env.store, signed, trusted, name=state.name, version=state.version, model_dir=model_dir
        )
    entry = None
    if problem is None:
        entry, problem = move_alias(
            env.client, env.audit, _plan(state, env, signed), env.before_move
        )
    if problem or entry is None:
        return _refuse(state, env, [problem or "not moved"], gates=gates, signed=signed)
    return _promoted(state, env, signed, gates, entry)


def _candidate_run(env: PromotionEnv, state: _State) -> str | None:
    """The MLflow run the candidate version was logged in (every report must be of it)."""
    from mlflow.exceptions import MlflowException

    try:
        run_id = env.client.get_model_version(state.name, state.version).run_id
    except MlflowException as err:
        raise LineageError(f"cannot read {state.name} v{state.version}: {err}") from err
    return str(run_id) if run_id else None


def _seal(
    state: _State,
    env: PromotionEnv,
    key: SigningKey,
    model_dir: str,
    model_sha256: str,
    gates: list[dict[str, Any]],
    provenance: ProvenanceRef,
) -> Sealed:
    """Sign and store the record of what this promotion attests (the predicate)."""
    policy = state.request.policy
    approval = state.request.approval
    predicate = {
        "alias": state.signing.alias,
        "previousAlias": state.signing.previous_alias,
        "previousChampion": state.champion,
        "source": state.request.candidate.source_uri,
        "gates": gates,
        "datasets": [{"name": n, "sha256": d} for d, n in sorted(provenance.datasets.items())],
        "manifest": {"ignore": list(DEFAULT_IGNORE), "ignoredPresent": []},
        "policy": {"source": policy.source, "sha256": policy_digest(policy)},
        "provenance": {"uri": provenance.statement_uri, "sha256": provenance.statement_sha256},
        "approval": approval.to_dict() if approval else None,
        "invocationId": f"{env.dag_id}/{env.run_id}",
        "auditHead": audit_head(env.audit),
        "promotedAt": utcnow(),
    }
    return seal(
        env.store,
        env.uri,
        key,
        model_dir,
        name=state.name,
        version=state.version,
        model_sha256=model_sha256,
        predicate=predicate,
    )


def _details(state: _State, env: PromotionEnv, signed: Sealed) -> dict[str, Any]:
    approval = state.request.approval
    return {
        "registered_model": state.name,
        "version": state.version,
        "alias": state.signing.alias,
        "previous_version": state.champion,
        "model_sha256": signed.model_sha256,
        "evidence_uri": signed.envelope_uri,
        "evidence_sha256": signed.envelope_sha256,
        "key_id": signed.key_id,
        "approved_by": approval.by if approval and approval.approved else None,
        "invocation": f"{env.dag_id}/{env.run_id}",
    }


def _plan(state: _State, env: PromotionEnv, signed: Sealed) -> MovePlan:
    tags = {
        TAG_EVIDENCE_URI: signed.envelope_uri,
        TAG_EVIDENCE_SHA256: signed.envelope_sha256,
        TAG_KEY_ID: signed.key_id,
        TAG_MODEL_SHA256: signed.model_sha256,
        TAG_PREVIOUS: state.champion or "none",
        TAG_ALIAS: state.signing.alias,
    }
    return MovePlan(
        state.name,
        state.version,
        state.signing.alias,
        state.signing.previous_alias,
        state.champion,
        state.previous,
        tags,
        _details(state, env, signed),
    )


def _v(version: str | None) -> str:
    return f"v{version}" if version else "unset"


def _promoted(
    state: _State,
    env: PromotionEnv,
    signed: Sealed,
    gates: list[dict[str, Any]],
    entry: AuditEntry,
) -> tuple[GateResult, dict[str, Any]]:
    details = _details(state, env, signed)
    message = (
        f"{state.name} v{state.version} is now @{state.signing.alias} "
        f"(was {_v(state.champion)}), signed by key {signed.key_id[:12]}"
    )
    result = GateResult(
        gate=GATE,
        verdict=Verdict.PASS,
        subjects={"model": signed.model_sha256},
        metrics={"promoted": 1, "gates_checked": len(gates)},
        message=message,
        tool_versions=_tool_versions(),
        started_at=state.started,
    )
    return result, {**details, "gates": gates, "audit": _audit_ref(env, entry)}


def _refuse(
    state: _State,
    env: PromotionEnv,
    reasons: list[str],
    *,
    gates: list[dict[str, Any]] | None = None,
    signed: Sealed | None = None,
) -> tuple[GateResult, dict[str, Any]]:
    details = {
        "registered_model": state.name,
        "version": state.version,
        "alias": state.signing.alias,
        "champion": state.champion,
        "reasons": reasons,
        "invocation": f"{env.dag_id}/{env.run_id}",
    }
    entry = env.audit.append("refusal", details)
    log.warning("Promotion of %s v%s refused: %s", state.name, state.version, "; ".join(reasons))
    more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
    result = GateResult(
        gate=GATE,
        verdict=Verdict.FAIL,
        metrics={"promoted": 0, "reasons": len(reasons)},
        findings=[{"severity": "critical", "reason": r} for r in reasons],
        message=f"promotion refused: {reasons[0]}{more}",
        tool_versions=_tool_versions(),
        started_at=state.started,
    )
    extra = (
        {"evidence_uri": signed.envelope_uri, "evidence_sha256": signed.envelope_sha256}
        if signed
        else {}
    )
    return result, {**details, **extra, "gates": gates or [], "audit": _audit_ref(env, entry)}


def _audit_ref(env: PromotionEnv, entry: AuditEntry) -> dict[str, Any]:
    return {"uri": env.audit.uri, "seq": entry.seq, "hash": entry.hash}


def _tool_versions() -> dict[str, str]:
    try:
        return {"model-signing": metadata.version("model-signing")}
    except metadata.PackageNotFoundError:
        return {}
