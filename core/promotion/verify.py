"""What a consumer runs before loading ``models:/<name>@<alias>``: :func:`verify_promotion`.

VERIFIED means all of this held:

1. the version the alias points at has a signed promotion record (DSSE, a trusted key), read
   back by the digest tagged on the version, naming this registered model and version;
2. the model files hash to the record's subject (model-signing's root digest), no file is
   hidden under an ignored name, and the OpenSSF model signature over them verifies;
3. the record was signed for this alias; or the alias is the record's previous alias
   (``previous-champion``) and the current champion's verified record names this version
   as the champion it replaced;
4. unless skipped (``audit_log_uri=None``; the CLI's ``--no-audit-log``): the audit log's
   chain is intact and reaches every anchor (the head the record saw when it was signed,
   the entry the tags name), and its last signed move of the alias went to this version
   with this record — an alias moved by hand fails here.

Every gate the record lists checked this model's digest and the provenance datasets in the
same DAG run (the promotion gate refused otherwise before signing).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DigestMismatchError, LineageError, NotFoundError
from mlsecops_provider.core.promotion.audit_log import Anchor, AuditEntry, AuditLog
from mlsecops_provider.core.promotion.record import (
    TAG_EVIDENCE_SHA256,
    TAG_EVIDENCE_URI,
    TAG_KEY_ID,
    TAG_ROLLBACK_PREFIX,
    PromotionCheck,
    check_record,
    consumer_settings,
)
from mlsecops_provider.core.promotion.signing import PublicKey, SignatureError
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import S3ClientFactory, read_verified, storage_for
from mlsecops_provider.core.tracking.lineage import check_tracking_reachable
from mlsecops_provider.core.tracking.registry import alias_version, download_model

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)


def _fail(check: PromotionCheck, code: str, reason: str) -> PromotionCheck:
    log.warning("%s@%s does not verify: %s", check.registered_model, check.alias, reason)
    return PromotionCheck(
        False, check.registered_model, check.alias, check.version, reason, code, check.key_id
    )


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
    """Check the version ``registered_model@alias`` points at (see the module docstring).

    A failed check is a result with ``verified=False``; an unreachable store or registry
    raises (the CLI's exit 2). ``audit_log_uri=None`` skips the audit-log check.
    """
    from mlflow import MlflowClient

    key = PublicKey.from_pem(public_key_pem)
    settings = consumer_settings(tracking_uri, registry_uri)
    check_tracking_reachable(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    version = alias_version(client, registered_model, alias)
    if version is None:
        reason = f"{registered_model}@{alias} is not set"
        return PromotionCheck(False, registered_model, alias, None, reason, "no_alias")
    trusted = {key.key_id: key}
    check = verify_version(
        client, settings, registered_model, version, trusted, alias=alias,
        s3_client_factory=s3_client_factory,
    )  # fmt: skip
    if not check.verified:
        return check
    check, champion = _check_alias(client, settings, check, trusted, s3_client_factory)
    if not check.verified or champion is None or not audit_log_uri:
        return check
    return _check_audit(check, champion, audit_log_uri, s3_client_factory, client)


def _check_alias(
    client: MlflowClient,
    settings: Settings,
    check: PromotionCheck,
    trusted: Mapping[str, PublicKey],
    s3: S3ClientFactory | None,
) -> tuple[PromotionCheck, PromotionCheck | None]:
    """The record must be for this alias, or this alias must be its previous champion."""
    name, alias, version = check.registered_model, check.alias, check.version
    if check.signed_alias == alias:
        return check, check
    if not check.signed_alias or alias != check.previous_alias:
        reason = f"v{version}'s signed record is for {name}@{check.signed_alias}, not @{alias}"
        return _fail(check, "wrong_alias", reason), None
    main = check.signed_alias
    current = alias_version(client, name, main)
    if current is None:
        return _fail(check, "previous_alias", f"{name}@{main} is not set"), None
    champion = verify_version(
        client, settings, name, current, trusted, alias=main, s3_client_factory=s3
    )
    if not champion.verified:
        reason = f"{name}@{main} (v{current}) does not verify: {champion.reason}"
        return _fail(check, "previous_alias", reason), None
    if champion.previous_champion != version:
        replaced = champion.previous_champion
        reason = (
            f"{name}@{alias} is v{version}, but the signed record of {name}@{main} "
            f"(v{current}) replaced {'v' + replaced if replaced else 'no champion'}"
        )
        return _fail(check, "previous_alias", reason), None
    return check, champion


def _check_audit(
    check: PromotionCheck,
    champion: PromotionCheck,
    uri: str,
    s3: S3ClientFactory | None,
    client: MlflowClient,
) -> PromotionCheck:
    """The log reaches every anchor and its last move of the alias is this record's."""
    anchors = [a for a in (*check.anchors, *champion.anchors) if a.source.endswith(uri)]
    report = AuditLog(uri, s3).verify(anchors)
    if not report.ok:
        return _fail(check, "audit", f"audit log {uri} is broken: {report.problem}")
    name, alias = champion.registered_model, champion.signed_alias or champion.alias
    forged = _forged_undo(report.entries, name, alias, client)
    if forged:
        return _fail(check, "audit", forged)
    last = last_move_entry(report.entries, name, alias)
    if last is None:
        return _fail(check, "audit", f"audit log {uri} records no promotion of {name}@{alias}")
    target = moved_to(last)
    if target != champion.version:
        reason = (
            f"{name}@{alias} points at v{champion.version}, but the audit log's last signed "
            f"move (#{last.seq} {last.kind}) went to v{target}: moved outside the gate"
        )
        return _fail(check, "alias_moved", reason)
    problem = _move_problem(report.entries, last, champion)
    return _fail(check, "audit", problem) if problem else check


def _move_problem(
    entries: Sequence[AuditEntry], last: AuditEntry, champion: PromotionCheck
) -> str | None:
    """Is ``last`` a move the gate could have made? (An appended, well-chained entry is not
    proof: the chain has no key.) A promotion claims its move only if the log's previous
    move went to the champion the signed record replaced, after the head the record saw."""
    name, alias = champion.registered_model, champion.signed_alias or champion.alias
    before = last_move_entry(entries[: last.seq - 1], name, alias)
    if last.kind == "rollback":
        came_from, to = str(last.details.get("from_version")), str(last.details.get("to_version"))
        if before is not None and moved_to(before) != came_from:
            return f"audit entry #{last.seq} rolls back from v{came_from}, the alias was elsewhere"
        promoted = _promotion_of(entries[: last.seq - 1], name, alias, came_from)
        if promoted is not None and str(promoted.details.get("previous_version")) != to:
            return (
                f"audit entry #{last.seq} rolls back to v{to}, but v{came_from}'s promotion "
                f"(#{promoted.seq}) replaced v{promoted.details.get('previous_version')}"
            )
        return None
    recorded = last.details.get("evidence_sha256")
    if recorded != champion.evidence_sha256:
        return (
            f"audit entry #{last.seq} promoted v{moved_to(last)} with record sha256:{recorded}, "
            f"the version's record is sha256:{champion.evidence_sha256}"
        )
    if champion.audit_head_seq is not None and last.seq <= champion.audit_head_seq:
        return f"audit entry #{last.seq} is older than the head the signed record saw"
    replaced = moved_to(before) if before else None
    if replaced is not None and replaced != champion.previous_champion:
        return (
            f"audit entry #{last.seq} moves {name}@{alias} from v{replaced}, but the signed "
            f"record replaced {_v(champion.previous_champion)}: not a move the gate made"
        )
    return None


def undone_seqs(entries: Sequence[AuditEntry]) -> set[int]:
    """The seqs of promotions that a refusal ``undoes`` (an int, as the gate writes it:
    ``7.0`` or ``true`` would match seq 7 or 1 in a set but are no undo)."""
    return {
        e.details["undoes"]
        for e in entries
        if e.kind == "refusal"
        and type(e.details.get("undoes")) is int
        and 1 <= e.details["undoes"] < e.seq  # an undo follows the claim it undoes
    }


def _forged_undo(
    entries: Sequence[AuditEntry], name: str, alias: str, client: MlflowClient
) -> str | None:
    """A refusal that ``undoes`` a promotion is real only if the gate could write it: the
    undo removes the version's record tags. One whose version still carries the record of
    the undone entry is forged (the chain has no key), and would hide that promotion."""
    from mlflow.exceptions import MlflowException

    for entry in entries:
        undoes = entry.details.get("undoes") if entry.kind == "refusal" else None
        if type(undoes) is not int or not 1 <= undoes < entry.seq:
            continue
        undone = entries[undoes - 1]
        details = undone.details
        if undone.kind != "promotion" or (
            (details.get("registered_model"), details.get("alias")) != (name, alias)
        ):
            continue
        version = str(details.get("version"))
        try:
            tags = dict(client.get_model_version(name, version).tags or {})
        except MlflowException as err:
            raise LineageError(f"cannot read {name} v{version}: {err}") from err
        if tags.get(TAG_EVIDENCE_SHA256) == details.get("evidence_sha256"):
            return (
                f"audit entry #{entry.seq} undoes promotion #{undoes} of v{version}, but "
                f"v{version} still carries that promotion's signed record: a forged undo"
            )
    return None


def _promotion_of(
    entries: Sequence[AuditEntry], name: str, alias: str, version: str
) -> AuditEntry | None:
    undone = undone_seqs(entries)
    for entry in reversed(entries):
        details = entry.details
        if (
            entry.kind == "promotion"
            and entry.seq not in undone
            and (
                (details.get("registered_model"), details.get("alias"), str(details.get("version")))
                == (name, alias, version)
            )
        ):
            return entry
    return None


def _v(version: str | None) -> str:
    return f"v{version}" if version else "no champion"


def moved_to(entry: AuditEntry) -> str:
    key = "version" if entry.kind == "promotion" else "to_version"
    return str(entry.details.get(key))


def last_move_entry(entries: Sequence[AuditEntry], name: str, alias: str) -> AuditEntry | None:
    """The last promotion (not undone) or rollback of ``name@alias``."""
    undone = undone_seqs(entries)
    for entry in reversed(entries):
        details = entry.details
        if details.get("registered_model") != name or details.get("alias") != alias:
            continue
        if entry.kind == "rollback" or (entry.kind == "promotion" and entry.seq not in undone):
            return entry
    return None


def _anchors(tags: Mapping[str, str], predicate: Mapping[str, Any]) -> tuple[Anchor, ...]:
    """Audit entries the version's tags and its signed record name (seq, hash, log)."""
    found = []
    for prefix in ("mlsecops.promotion.", TAG_ROLLBACK_PREFIX):
        seq, digest = tags.get(f"{prefix}audit_seq"), tags.get(f"{prefix}audit_hash")
        if seq and seq.isdigit() and digest:
            where = tags.get(f"{prefix}audit_log", "")
            found.append(Anchor(int(seq), digest, f"the {prefix}audit_* tags of {where}"))
    head = predicate.get("auditHead") or {}
    if isinstance(head, Mapping) and isinstance(head.get("seq"), int) and head["seq"] > 0:
        source = f"the signed record's auditHead of {head.get('uri', '')}"
        found.append(Anchor(head["seq"], str(head.get("hash")), source))
    return tuple(found)


def registry_anchors(log_uri: str, tracking_uri: str | None = None) -> list[Anchor]:
    """The anchors of ``log_uri`` that the registry's model versions carry as tags.

    A SQLite registry that does not exist yet has none (it is not created).
    """
    from urllib.parse import urlparse

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    settings = consumer_settings(tracking_uri)
    parsed = urlparse(settings.tracking_uri)
    if parsed.scheme == "sqlite" and not Path(parsed.path[1:]).exists():
        return []
    check_tracking_reachable(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    try:
        versions = client.search_model_versions(max_results=10_000)
    except MlflowException as err:
        raise LineageError(f"cannot list model versions at {settings.tracking_uri}: {err}") from err
    anchors = []
    for version in versions:
        for anchor in _anchors(dict(version.tags or {}), {}):
            if anchor.source.endswith(log_uri):
                where = f"{version.name} v{version.version}'s tags"
                anchors.append(Anchor(anchor.seq, anchor.hash, where))
    return anchors


def verify_version(
    client: MlflowClient,
    settings: Settings,
    name: str,
    version: str,
    trusted: Mapping[str, PublicKey],
    *,
    alias: str,
    s3_client_factory: S3ClientFactory | None = None,
) -> PromotionCheck:
    """Verify one model version's promotion record with the trusted keys (1 and 2 above)."""
    from mlflow.exceptions import MlflowException

    try:
        model_version = client.get_model_version(name, version)
    except MlflowException as err:
        raise LineageError(f"cannot read {name} v{version} from the registry: {err}") from err
    tags = dict(model_version.tags or {})
    base = PromotionCheck(False, name, alias, version, "", "", tags.get(TAG_KEY_ID))
    uri, digest = tags.get(TAG_EVIDENCE_URI), tags.get(TAG_EVIDENCE_SHA256)
    if not uri or not digest:
        return _fail(base, "no_record", f"version {version} has no signed promotion record")

    def read(ref_uri: str, ref_sha256: str) -> bytes:
        return read_verified(storage_for(ref_uri, s3_client_factory), ref_uri, ref_sha256)

    try:
        envelope = read(uri, digest)
    except (DigestMismatchError, NotFoundError) as err:
        return _fail(base, "evidence_changed", f"promotion evidence changed or missing: {err}")
    with tempfile.TemporaryDirectory(prefix="mlsecops-verify-") as tmp:
        model_dir = download_model(settings, str(model_version.source), str(Path(tmp) / "model"))
        try:
            statement, key_id, files = check_record(
                envelope, trusted, name=name, version=version, model_dir=model_dir, read=read
            )
        except SignatureError as err:  # a RecordFailure, or a malformed envelope/signature
            return _fail(base, getattr(err, "code", "bad_record"), str(err))
    predicate = statement["predicate"]
    previous = predicate.get("previousChampion")
    return PromotionCheck(
        True, name, alias, version, "verified", "ok", key_id,
        statement["subject"][0]["digest"]["sha256"], uri, digest,
        signed_alias=predicate.get("alias"),
        previous_alias=predicate.get("previousAlias"),
        previous_champion=None if previous in (None, "", "none") else str(previous),
        anchors=_anchors(tags, predicate),
        audit_head_seq=_head_seq(predicate),
        files=tuple(sorted(files.items())),
    )  # fmt: skip


def _head_seq(predicate: Mapping[str, Any]) -> int | None:
    head = predicate.get("auditHead")
    seq = head.get("seq") if isinstance(head, Mapping) else None
    return seq if isinstance(seq, int) else None


__all__ = ["last_move_entry", "moved_to", "verify_promotion", "verify_version"]
