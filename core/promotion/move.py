"""Moving the alias: registry compare-and-set, then a conditional audit append, then the move.

The MLflow registry has no atomic compare-and-set for aliases, the audit log has one (an
exclusive lock on ``file://``, a conditional put on ``s3://``). So a promotion *claims* the
move in the log first: the ``promotion`` entry is appended only if the log's last move of
``name@alias`` is still the champion this promotion read at its start. Of two promotions
racing, exactly one claim succeeds; the other is refused (and audited by the gate) without
touching the registry. The winner then tags its version (record, key, model digest, and the
seq and hash of its audit entry, the anchor that makes a truncated log evident) and moves
the alias. If MLflow then fails or the alias is not ours right after the move, the aliases
and tags are restored and a ``refusal`` entry naming the undone claim (``undoes``) is
appended, so the log's last move is again the previous one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import LineageError, MLSecOpsError
from mlsecops_provider.core.promotion.audit_log import AuditEntry, AuditLog, PreconditionFailed
from mlsecops_provider.core.promotion.record import (
    PROMOTION_TAGS,
    TAG_AUDIT_HASH,
    TAG_AUDIT_LOG,
    TAG_AUDIT_SEQ,
)
from mlsecops_provider.core.promotion.verify import last_move_entry, moved_to
from mlsecops_provider.core.tracking.registry import alias_version

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)


def _v(version: str | None) -> str:
    return f"v{version}" if version else "unset"


@dataclass(frozen=True)
class MovePlan:
    name: str
    version: str
    alias: str
    previous_alias: str
    champion: str | None  # what the alias pointed at when the promotion started
    previous: str | None  # what the previous alias pointed at then
    tags: Mapping[str, str]
    details: Mapping[str, Any]  # the audit entry's details


def _claim_condition(plan: MovePlan) -> Callable[[list[AuditEntry]], str | None]:
    def still_ours(entries: list[AuditEntry]) -> str | None:
        entry = last_move_entry(entries, plan.name, plan.alias)
        last = moved_to(entry) if entry else None
        if last is None or last == plan.champion:
            return None
        return (
            f"lost the race: the audit log moved {plan.name}@{plan.alias} to v{last} after "
            f"this promotion read {_v(plan.champion)}; not moved"
        )

    return still_ours


def move_alias(
    client: MlflowClient,
    audit: AuditLog,
    plan: MovePlan,
    before_move: Callable[[], None] | None = None,
) -> tuple[AuditEntry | None, str | None]:
    """The audit entry of the move, or a reason why nothing moved."""
    from mlflow.exceptions import MlflowException

    name, alias = plan.name, plan.alias
    if before_move is not None:
        before_move()
    current = alias_version(client, name, alias)
    if current != plan.champion:
        return None, (
            f"{name}@{alias} changed from {_v(plan.champion)} to {_v(current)} "
            "during the promotion (compare-and-set failed); not moved"
        )
    try:
        entry = audit.append("promotion", plan.details, precondition=_claim_condition(plan))
    except PreconditionFailed as err:
        return None, str(err)
    anchor = {TAG_AUDIT_SEQ: str(entry.seq), TAG_AUDIT_HASH: entry.hash, TAG_AUDIT_LOG: audit.uri}
    try:
        for tag, value in {**plan.tags, **anchor}.items():
            client.set_model_version_tag(name, plan.version, tag, value)
        client.set_registered_model_alias(name, alias, plan.version)
        if plan.champion is not None:
            client.set_registered_model_alias(name, plan.previous_alias, plan.champion)
        after = alias_version(client, name, alias)
    except (MlflowException, LineageError) as err:
        _undo(client, audit, plan, entry, f"MLflow refused the move: {err}")
        raise LineageError(f"MLflow refused to move {name}@{alias}: {err}") from err
    if after != plan.version:
        reason = f"lost a race: {name}@{alias} is {_v(after)} right after moving it"
        _undo(client, audit, plan, entry, reason, restore_aliases=False)
        return None, reason
    return entry, None


def _undo(
    client: MlflowClient,
    audit: AuditLog,
    plan: MovePlan,
    entry: AuditEntry,
    why: str,
    restore_aliases: bool = True,
) -> None:
    """Restore the registry and record in the log that the claimed move did not happen."""
    try:
        if restore_aliases:
            for alias, version in (
                (plan.alias, plan.champion),
                (plan.previous_alias, plan.previous),
            ):
                if version is None:
                    client.delete_registered_model_alias(plan.name, alias)
                else:
                    client.set_registered_model_alias(plan.name, alias, version)
        untag(client, plan.name, plan.version)
    except Exception as err:  # the refusal below must still be written
        log.error("could not restore %s after a failed move: %s", plan.name, err)
    try:
        audit.append(
            "refusal",
            {**plan.details, "action": "promotion", "undoes": entry.seq, "reasons": [why]},
        )
    except MLSecOpsError as err:
        log.error("could not audit the undone move #%d: %s", entry.seq, err)


def untag(client: MlflowClient, name: str, version: str) -> None:
    for tag in (*PROMOTION_TAGS, TAG_AUDIT_SEQ, TAG_AUDIT_HASH, TAG_AUDIT_LOG):
        try:
            client.delete_model_version_tag(name, version, tag)
        except Exception as err:  # an absent tag
            log.debug("tag %s of %s v%s: %s", tag, name, version, err)
