"""The signed promotion record and its verification, for the gate and for consumers.

The record is an in-toto Statement v1 in a DSSE envelope. Its subject is the model (name
``<registered model>/<version>``, the root SHA-256 that equals OpenSSF model-signing's subject
digest); its predicate holds each gate's verdict and report digest, the policy digest, the
provenance statement's digest, the model signature's URI and digest, the approval (who, when)
and the previous champion. The model version carries the envelope's URI and digest and the
signer's key id as tags (``mlsecops.promotion.*``).

:func:`verify_promotion` is what a consumer runs before loading ``models:/<name>@<alias>``:
the envelope must have its tagged digest and verify with the given key, it must name this
version, and the model artifacts must hash to its subject and pass model-signing verification.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DigestMismatchError, LineageError, NotFoundError
from mlsecops_provider.core.hashing import hash_path
from mlsecops_provider.core.promotion.signing import (
    PublicKey,
    SignatureError,
    dsse_verify,
    envelope_key_ids,
    signature_subject_digest,
    verify_model,
)
from mlsecops_provider.core.provenance.slsa import STATEMENT_TYPE
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import S3ClientFactory, read_verified, storage_for
from mlsecops_provider.core.tracking.lineage import check_tracking_reachable
from mlsecops_provider.core.tracking.registry import alias_version, download_model

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlsecops_provider.core.promotion.audit_log import AuditEntry

log = logging.getLogger(__name__)

PREDICATE_TYPE = "urn:airflow-provider-mlsecops:predicate:promotion:v1"
TAG_PREFIX = "mlsecops.promotion."
TAG_EVIDENCE_URI = f"{TAG_PREFIX}evidence_uri"
TAG_EVIDENCE_SHA256 = f"{TAG_PREFIX}evidence_sha256"
TAG_KEY_ID = f"{TAG_PREFIX}key_id"
TAG_MODEL_SHA256 = f"{TAG_PREFIX}model_sha256"
TAG_PREVIOUS = f"{TAG_PREFIX}previous_version"
TAG_ALIAS = f"{TAG_PREFIX}alias"
Reader = Callable[[str, str], bytes]


class RecordFailure(SignatureError):
    """A promotion record does not verify; ``code`` says which check failed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def promotion_statement(
    *,
    name: str,
    version: str,
    model_sha256: str,
    predicate: Mapping[str, Any],
) -> dict[str, Any]:
    """The in-toto Statement v1 of a promotion (the predicate names model and version)."""
    body = {"registeredModel": name, "version": version, **dict(predicate)}
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"{name}/{version}", "digest": {"sha256": model_sha256}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": json.loads(json.dumps(body, default=str)),
    }


def _parse_statement(payload: bytes, name: str, version: str) -> dict[str, Any]:
    try:
        statement = json.loads(payload)
        digest = statement["subject"][0]["digest"]["sha256"]
        predicate = statement["predicate"]
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise RecordFailure("bad_record", f"signed record is not a statement ({err})") from err
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        raise RecordFailure("bad_record", "signed record has the wrong _type or predicateType")
    if (predicate.get("registeredModel"), str(predicate.get("version"))) != (name, version):
        raise RecordFailure(
            "wrong_subject",
            f"signed record is for {predicate.get('registeredModel')} "
            f"v{predicate.get('version')}, not {name} v{version}",
        )
    if not isinstance(digest, str):
        raise RecordFailure("bad_record", "signed record: subject digest is not a string")
    return dict(statement)


def check_record(
    envelope: bytes,
    trusted: Mapping[str, PublicKey],
    *,
    name: str,
    version: str,
    model_dir: str,
    read: Reader,
) -> tuple[dict[str, Any], str]:
    """Verify a signed record against trusted keys and the model's files.

    Returns the statement and the signer's key id; raises :class:`RecordFailure`.
    """
    signers = envelope_key_ids(envelope)
    if not set(signers) & set(trusted):
        raise RecordFailure(
            "wrong_key",
            f"record signed by key {', '.join(signers)}, not by the given key "
            f"{', '.join(sorted(trusted))}",
        )
    try:
        verified = dsse_verify(envelope, trusted)
    except SignatureError as err:
        raise RecordFailure("bad_signature", f"evidence signature: {err}") from err
    statement = _parse_statement(verified.payload, name, version)
    signed_digest = statement["subject"][0]["digest"]["sha256"]
    actual = hash_path(model_dir).root_digest
    if actual != signed_digest:
        raise RecordFailure(
            "model_changed",
            f"model artifact changed: signed sha256:{signed_digest}, now sha256:{actual}",
        )
    _check_model_signature(statement, trusted[verified.key_id], model_dir, read)
    return statement, verified.key_id


def _check_model_signature(
    statement: Mapping[str, Any], key: PublicKey, model_dir: str, read: Reader
) -> None:
    ref = statement["predicate"].get("modelSignature") or {}
    if not ref.get("uri") or not ref.get("sha256"):
        raise RecordFailure("bad_record", "signed record names no model signature")
    try:
        signature = read(str(ref["uri"]), str(ref["sha256"]))
    except (DigestMismatchError, NotFoundError) as err:
        raise RecordFailure("model_signature", f"model signature: {err}") from err
    if signature_subject_digest(signature) != statement["subject"][0]["digest"]["sha256"]:
        raise RecordFailure("model_signature", "model signature is over a different model")
    with tempfile.TemporaryDirectory(prefix="mlsecops-sig-") as tmp:
        path = Path(tmp) / "model.sig.json"
        path.write_bytes(signature)
        try:
            verify_model(model_dir, path, key)
        except SignatureError as err:
            raise RecordFailure("model_changed", str(err)) from err


# ---------------------------------------------------------------------------- consumers


@dataclass(frozen=True)
class PromotionCheck:
    """What :func:`verify_promotion` found; ``code`` names the failed check."""

    verified: bool
    registered_model: str
    alias: str
    version: str | None
    reason: str
    code: str = "ok"
    key_id: str | None = None
    model_sha256: str | None = None
    evidence_uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def consumer_settings(tracking_uri: str | None = None, registry_uri: str | None = None) -> Settings:
    settings = Settings.from_env()
    if tracking_uri:
        settings = dataclasses.replace(settings, tracking_uri=tracking_uri)
    if registry_uri:
        settings = dataclasses.replace(settings, registry_uri=registry_uri)
    return settings


def verify_promotion(
    registered_model: str,
    alias: str,
    public_key_pem: bytes | str,
    tracking_uri: str | None = None,
    *,
    registry_uri: str | None = None,
    s3_client_factory: S3ClientFactory | None = None,
    audit_log_uri: str | None = None,
) -> PromotionCheck:
    """Check the version ``registered_model@alias`` points at against its signed record.

    A failed check is a result with ``verified=False``; an unreachable store or registry
    raises (the CLI's exit 2).
    """
    from mlflow import MlflowClient

    key = PublicKey.from_pem(public_key_pem)
    settings = consumer_settings(tracking_uri, registry_uri)
    check_tracking_reachable(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    version = alias_version(client, registered_model, alias)
    if version is None:
        return PromotionCheck(
            False,
            registered_model,
            alias,
            None,
            f"{registered_model}@{alias} is not set",
            "no_alias",
        )
    return verify_version(
        client,
        settings,
        registered_model,
        version,
        {key.key_id: key},
        alias=alias,
        s3_client_factory=s3_client_factory,
        audit_log_uri=audit_log_uri,
    )


def verify_version(
    client: MlflowClient,
    settings: Settings,
    name: str,
    version: str,
    trusted: Mapping[str, PublicKey],
    *,
    alias: str,
    s3_client_factory: S3ClientFactory | None = None,
    audit_log_uri: str | None = None,
) -> PromotionCheck:
    """Verify one model version's promotion record with the trusted keys."""
    from mlflow.exceptions import MlflowException

    try:
        model_version = client.get_model_version(name, version)
    except MlflowException as err:
        raise LineageError(f"cannot read {name} v{version} from the registry: {err}") from err
    tags = dict(model_version.tags or {})

    def failed(code: str, reason: str) -> PromotionCheck:
        log.warning("%s v%s: promotion record does not verify: %s", name, version, reason)
        return PromotionCheck(False, name, alias, version, reason, code, tags.get(TAG_KEY_ID))

    uri, digest = tags.get(TAG_EVIDENCE_URI), tags.get(TAG_EVIDENCE_SHA256)
    if not uri or not digest:
        return failed("no_record", f"version {version} has no signed promotion record")

    def read(ref_uri: str, ref_sha256: str) -> bytes:
        return read_verified(storage_for(ref_uri, s3_client_factory), ref_uri, ref_sha256)

    try:
        envelope = read(uri, digest)
    except (DigestMismatchError, NotFoundError) as err:
        return failed("evidence_changed", f"promotion evidence changed or missing: {err}")
    with tempfile.TemporaryDirectory(prefix="mlsecops-verify-") as tmp:
        model_dir = download_model(settings, str(model_version.source), str(Path(tmp) / "model"))
        try:
            statement, key_id = check_record(
                envelope, trusted, name=name, version=version, model_dir=model_dir, read=read
            )
        except SignatureError as err:  # a RecordFailure, or a malformed envelope/signature
            return failed(getattr(err, "code", "bad_record"), str(err))
    if audit_log_uri:
        problem = audit_disagrees(audit_log_uri, name, alias, version, s3_client_factory)
        if problem:
            return failed("audit", problem)
    model_sha256 = statement["subject"][0]["digest"]["sha256"]
    return PromotionCheck(True, name, alias, version, "verified", "ok", key_id, model_sha256, uri)


def audit_disagrees(
    log_uri: str,
    name: str,
    alias: str,
    version: str,
    s3_client_factory: S3ClientFactory | None = None,
) -> str | None:
    """None if the audit log's last move of ``name@alias`` went to ``version``; else why not."""
    from mlsecops_provider.core.promotion.audit_log import AuditLog

    report = AuditLog(log_uri, s3_client_factory).verify()
    if not report.ok:
        return f"audit log {log_uri} is broken: {report.problem}"
    last = last_move(report.entries, name, alias)
    if last is None:
        return f"audit log {log_uri} records no promotion of {name}@{alias}"
    if last != version:
        return (
            f"audit log says {name}@{alias} was last moved to v{last}, alias points at v{version}"
        )
    return None


def last_move(entries: Sequence[AuditEntry], name: str, alias: str) -> str | None:
    """The version the last promotion or rollback of ``name@alias`` moved the alias to."""
    for entry in reversed(entries):
        details = entry.details
        if details.get("registered_model") != name or details.get("alias") != alias:
            continue
        if entry.kind == "promotion":
            return str(details.get("version"))
        if entry.kind == "rollback":
            return str(details.get("to_version"))
    return None
