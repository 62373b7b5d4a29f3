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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DigestMismatchError, NotFoundError
from mlsecops_provider.core.hashing import hash_path
from mlsecops_provider.core.promotion.audit_log import Anchor
from mlsecops_provider.core.promotion.signing import (
    INTOTO_PAYLOAD_TYPE,
    PublicKey,
    SignatureError,
    dsse_verify,
    envelope_key_ids,
    signature_subject_digest,
    verify_model,
)
from mlsecops_provider.core.provenance.slsa import STATEMENT_TYPE
from mlsecops_provider.core.settings import Settings

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

PREDICATE_TYPE = "urn:airflow-provider-mlsecops:predicate:promotion:v1"
TAG_PREFIX = "mlsecops.promotion."
TAG_EVIDENCE_URI = f"{TAG_PREFIX}evidence_uri"
TAG_EVIDENCE_SHA256 = f"{TAG_PREFIX}evidence_sha256"
TAG_KEY_ID = f"{TAG_PREFIX}key_id"
TAG_MODEL_SHA256 = f"{TAG_PREFIX}model_sha256"
TAG_PREVIOUS = f"{TAG_PREFIX}previous_version"
TAG_ALIAS = f"{TAG_PREFIX}alias"
TAG_AUDIT_SEQ = f"{TAG_PREFIX}audit_seq"  # the promotion's audit entry: an anchor of the log
TAG_AUDIT_HASH = f"{TAG_PREFIX}audit_hash"
TAG_AUDIT_LOG = f"{TAG_PREFIX}audit_log"
TAG_ROLLBACK_PREFIX = "mlsecops.rollback."  # the last rollback to a version: also an anchor
PROMOTION_TAGS = (
    TAG_EVIDENCE_URI,
    TAG_EVIDENCE_SHA256,
    TAG_KEY_ID,
    TAG_MODEL_SHA256,
    TAG_PREVIOUS,
    TAG_ALIAS,
)
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


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects with a key twice have two readings (first or last wins): refused."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _parse_statement(payload: bytes, name: str, version: str) -> dict[str, Any]:
    try:
        statement = json.loads(payload, object_pairs_hook=_unique_keys)
        digest = statement["subject"][0]["digest"]["sha256"]
        predicate = statement["predicate"]
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise RecordFailure("bad_record", f"signed record is not a statement ({err})") from err
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        raise RecordFailure("bad_record", "signed record has the wrong _type or predicateType")
    if not isinstance(predicate, dict) or not all(
        isinstance(predicate.get(k), str) for k in ("registeredModel", "version", "alias")
    ):
        raise RecordFailure(
            "bad_record", "signed record: predicate is not an object with string "
            "registeredModel, version and alias"
        )  # fmt: skip
    if (predicate.get("registeredModel"), predicate.get("version")) != (name, version):
        raise RecordFailure(
            "wrong_subject",
            f"signed record is for {predicate.get('registeredModel')} "
            f"v{predicate.get('version')}, not {name} v{version}",
        )
    if not isinstance(digest, str):
        raise RecordFailure("bad_record", "signed record: subject digest is not a string")
    return dict(statement)


def signed_statement(
    envelope: bytes, trusted: Mapping[str, PublicKey], *, name: str, version: str
) -> tuple[dict[str, Any], str]:
    """The statement of an envelope a trusted key signed, for ``name`` v``version`` (no
    model check); raises :class:`RecordFailure`."""
    try:
        verified = dsse_verify(envelope, trusted)
    except SignatureError as err:
        raise RecordFailure("bad_signature", f"evidence signature: {err}") from err
    if verified.payload_type != INTOTO_PAYLOAD_TYPE:
        raise RecordFailure(
            "bad_record",
            f"signed record has payloadType {verified.payload_type[:80]!r}, "
            f"not {INTOTO_PAYLOAD_TYPE}",
        )
    return _parse_statement(verified.payload, name, version), verified.key_id


def check_record(
    envelope: bytes,
    trusted: Mapping[str, PublicKey],
    *,
    name: str,
    version: str,
    model_dir: str,
    read: Reader,
) -> tuple[dict[str, Any], str, dict[str, str]]:
    """Verify a signed record against trusted keys and the model's files.

    Returns the statement, the signer's key id and the verified files (relative path ->
    SHA-256; model-signing checked the names too, which the root digest does not bind);
    raises :class:`RecordFailure`.
    """
    signers = envelope_key_ids(envelope)
    if not set(signers) & set(trusted):
        raise RecordFailure(
            "wrong_key",
            f"record signed by key {', '.join(signers)}, not by the given key "
            f"{', '.join(sorted(trusted))}",
        )
    statement, key_id = signed_statement(envelope, trusted, name=name, version=version)
    signed_digest = statement["subject"][0]["digest"]["sha256"]
    manifest = hash_path(model_dir)
    actual = manifest.root_digest
    if manifest.ignored:
        raise RecordFailure(
            "ignored_files",
            f"model folder has paths the digest does not cover (ignored names): "
            f"{', '.join(manifest.ignored)}",
        )
    if actual != signed_digest:
        raise RecordFailure(
            "model_changed",
            f"model artifact changed: signed sha256:{signed_digest}, now sha256:{actual}",
        )
    _check_model_signature(statement, trusted[key_id], model_dir, read)
    return statement, key_id, dict(manifest.files)


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
    evidence_sha256: str | None = None
    signed_alias: str | None = None  # the alias the record was signed for
    previous_alias: str | None = None
    previous_champion: str | None = None  # the version this promotion replaced
    anchors: tuple[Anchor, ...] = ()  # audit entries the record and the tags name
    audit_head_seq: int | None = None  # the log's head when the record was signed
    # The verified files as (relative path, sha256). The root digest does not bind names:
    # a loader that reads the model again must compare its files with these, not only the
    # root digest (a rename that keeps the digests in order keeps the root digest).
    files: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def consumer_settings(tracking_uri: str | None = None, registry_uri: str | None = None) -> Settings:
    settings = Settings.from_env()
    if tracking_uri:
        settings = dataclasses.replace(settings, tracking_uri=tracking_uri)
    if registry_uri:
        settings = dataclasses.replace(settings, registry_uri=registry_uri)
    return settings
