"""Roll a registry alias back to the previous champion, after verifying its signed record.

The version under ``previous-champion`` must still verify (its promotion record, with a
trusted key, against its model files); the compare-and-set guard re-reads the alias before
moving it. ``previous-champion`` then moves to the champion before that one (recorded at its
promotion), or is removed. Rollbacks and refused rollbacks go to the audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlsecops_provider.core.errors import (
    DigestMismatchError,
    LineageError,
    NotFoundError,
    SignatureError,
)
from mlsecops_provider.core.promotion.audit_log import AuditEntry, AuditLog
from mlsecops_provider.core.promotion.checks import PREVIOUS_ALIAS
from mlsecops_provider.core.promotion.record import (
    TAG_EVIDENCE_SHA256,
    TAG_EVIDENCE_URI,
    TAG_PREVIOUS,
    TAG_ROLLBACK_PREFIX,
    signed_statement,
)
from mlsecops_provider.core.promotion.signing import PublicKey
from mlsecops_provider.core.promotion.verify import verify_version
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import S3ClientFactory, read_verified, storage_for
from mlsecops_provider.core.tracking.lineage import check_tracking_reachable
from mlsecops_provider.core.tracking.registry import CHAMPION, alias_version

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)


def _v(version: str | None) -> str:
    return f"v{version}" if version else "unset"


def _move_back(
    client: MlflowClient,
    name: str,
    aliases: tuple[str, str],
    current: str | None,
    target: str,
    actor: str,
) -> None:
    """Champion to ``target``; ``previous`` to the champion before it, or removed."""
    from mlflow.exceptions import MlflowException

    alias, previous_alias = aliases
    try:
        client.set_registered_model_alias(name, alias, target)
        earlier = client.get_model_version(name, target).tags.get(TAG_PREVIOUS)
        if earlier and earlier not in ("none", current):
            client.set_registered_model_alias(name, previous_alias, earlier)
        else:
            client.delete_registered_model_alias(name, previous_alias)
        if current is not None:
            client.set_model_version_tag(name, current, "mlsecops.rolled_back_by", actor)
    except MlflowException as err:
        raise LineageError(f"MLflow refused to roll back {name}@{alias}: {err}") from err


def _anchor(client: MlflowClient, name: str, version: str, entry: AuditEntry, uri: str) -> None:
    """The rollback's audit entry on the target's tags: the log must reach it from now on."""
    from mlflow.exceptions import MlflowException

    tags = {"audit_seq": str(entry.seq), "audit_hash": entry.hash, "audit_log": uri}
    try:
        for tag, value in tags.items():
            client.set_model_version_tag(name, version, f"{TAG_ROLLBACK_PREFIX}{tag}", value)
    except MlflowException as err:
        raise LineageError(f"rolled back, but could not tag {name} v{version}: {err}") from err


def _replaced(
    client: MlflowClient,
    name: str,
    current: str | None,
    trusted: Mapping[str, PublicKey],
    s3: S3ClientFactory | None,
) -> str | None:
    """The previous champion the current champion's signed record names (its envelope
    only: a champion whose files were tampered with can still be rolled back)."""
    if current is None:
        return None
    tags = dict(client.get_model_version(name, current).tags or {})
    uri, digest = tags.get(TAG_EVIDENCE_URI), tags.get(TAG_EVIDENCE_SHA256)
    if not uri or not digest:
        return None
    try:
        envelope = read_verified(storage_for(uri, s3), uri, digest)
        statement, _ = signed_statement(envelope, trusted, name=name, version=current)
    except (SignatureError, DigestMismatchError, NotFoundError):
        return None
    previous = statement["predicate"].get("previousChampion")
    return None if previous in (None, "", "none") else str(previous)


@dataclass(frozen=True)
class RollbackResult:
    rolled_back: bool
    registered_model: str
    alias: str
    from_version: str | None
    to_version: str | None
    reason: str
    audit_seq: int


def rollback(
    settings: Settings,
    registered_model: str,
    trusted: Mapping[str, PublicKey],
    *,
    audit: AuditLog,
    alias: str = CHAMPION,
    previous_alias: str = PREVIOUS_ALIAS,
    actor: str = "unknown",
    reason: str = "",
    s3_client_factory: S3ClientFactory | None = None,
) -> RollbackResult:
    """Move ``alias`` back to ``previous_alias`` if that version's signed record verifies."""
    from mlflow import MlflowClient

    check_tracking_reachable(settings.tracking_uri)  # one line now, not minutes of retries
    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    name = registered_model
    current = alias_version(client, name, alias)
    target = alias_version(client, name, previous_alias)
    base = {
        "registered_model": name,
        "alias": alias,
        "from_version": current,
        "to_version": target,
        "actor": actor,
        "reason": reason,
    }

    def refused(why: str) -> RollbackResult:
        entry = audit.append("refusal", {**base, "action": "rollback", "reasons": [why]})
        log.warning("Rollback of %s@%s refused: %s", name, alias, why)
        return RollbackResult(False, name, alias, current, target, why, entry.seq)

    if target is None or target == current:
        return refused(f"{name}@{previous_alias} is {_v(target)}: nothing to roll back to")
    check = verify_version(
        client, settings, name, target, trusted, alias=alias, s3_client_factory=s3_client_factory
    )
    if not check.verified:
        return refused(f"v{target} does not verify: {check.reason}")
    if check.signed_alias != alias:
        return refused(f"v{target}'s signed record is for @{check.signed_alias}, not @{alias}")
    if current is None:
        return refused(f"{name}@{alias} is unset: no champion to roll back from")
    replaced = _replaced(client, name, current, trusted, s3_client_factory)
    if replaced != target:
        return refused(
            f"{name}@{alias} v{current}'s signed record replaced {_v(replaced)}, "
            f"not v{target}: a rollback goes only there"
        )
    if alias_version(client, name, alias) != current:
        return refused(f"{name}@{alias} changed during the rollback")
    _move_back(client, name, (alias, previous_alias), current, target, actor)
    entry = audit.append("rollback", base)
    _anchor(client, name, target, entry, audit.uri)
    log.info("Rolled %s@%s back from %s to v%s", name, alias, _v(current), target)
    return RollbackResult(True, name, alias, current, target, "rolled back", entry.seq)
