"""What the promotion gate checks before it signs: policy, candidate, gates, provenance, approval.

* :class:`SigningPolicy`: the policy's ``signing`` section (pinned public keys, optional key
  ids, ``require_approval``, aliases), validated; one line names a bad field.
* :func:`check_gates`: every gate summary's report is read back by its digest; the verdict in
  the report is what counts. A required gate without a result, a changed or missing report,
  or a blocking verdict is a reason to refuse.
* :func:`check_provenance`: the provenance report and its stored statement must be intact.
* :class:`Approval`: a human decision from Airflow's HITL ``ApprovalOperator``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mlsecops_provider.core.errors import (
    ConfigError,
    DataError,
    DigestMismatchError,
    NotFoundError,
    PolicyError,
)
from mlsecops_provider.core.evidence import EvidenceStore, GateResult, Verdict
from mlsecops_provider.core.policy import Policy, section_config
from mlsecops_provider.core.promotion.signing import PublicKey, load_public_key
from mlsecops_provider.core.promotion.subjects import Scope, check_subjects, provenance_datasets
from mlsecops_provider.core.provenance.slsa import statement_bytes
from mlsecops_provider.core.storage import sha256_bytes
from mlsecops_provider.core.tracking.registry import CHAMPION

log = logging.getLogger(__name__)
PREVIOUS_ALIAS = "previous-champion"


@dataclass(frozen=True)
class SigningPolicy:
    """The policy's ``signing`` section: pinned keys, approval, aliases."""

    public_keys: tuple[str, ...] = ()  # PEM text or file paths (relative to MLSECOPS_HOME)
    key_ids: tuple[str, ...] = ()  # optional: the SHA-256 key ids the keys must have
    require_approval: bool = False
    alias: str = CHAMPION
    previous_alias: str = PREVIOUS_ALIAS
    block_on_warn: bool = False  # true: a required gate's ``warn`` refuses the promotion

    def __post_init__(self) -> None:
        for index, key_id in enumerate(self.key_ids):
            if not re.fullmatch(r"[0-9a-f]{64}", key_id):
                raise ValueError(f"key_ids[{index}]: {key_id!r} is not 64 lowercase hex chars")
        if not self.alias or self.alias == self.previous_alias:
            raise ValueError("alias and previous_alias must be set and differ")

    @classmethod
    def from_policy(cls, policy: Policy) -> SigningPolicy:
        return section_config(cls, policy.signing, f"{policy.source}: signing")

    def trusted_keys(self, home: Path, where: str = "signing") -> dict[str, PublicKey]:
        """The pinned public keys by key id; none pinned is an error (fail closed)."""
        if not self.public_keys:
            raise PolicyError(f"{where}.public_keys: no public key pinned; promotion needs one")
        keys: dict[str, PublicKey] = {}
        for index, source in enumerate(self.public_keys):
            try:
                key = load_public_key(source, home)
            except ConfigError as err:
                raise PolicyError(f"{where}.public_keys[{index}]: {err}") from err
            keys[key.key_id] = key
        if self.key_ids:
            unlisted = sorted(set(keys) - set(self.key_ids))
            unmatched = sorted(set(self.key_ids) - set(keys))
            if unlisted or unmatched:
                raise PolicyError(
                    f"{where}.key_ids: pinned ids and public keys differ "
                    f"(unlisted {unlisted}, unmatched {unmatched})"
                )
        return keys


@dataclass(frozen=True)
class Candidate:
    """The registered model version to promote (the train task's output)."""

    name: str
    version: str
    source_uri: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        missing = [k for k in ("name", "version", "source_uri") if not data.get(k)]
        if missing:
            raise DataError(f"candidate model: missing field(s) {missing}")
        return cls(str(data["name"]), str(data["version"]), str(data["source_uri"]))


@dataclass(frozen=True)
class Approval:
    """A human decision: approved or not, by whom, when."""

    approved: bool
    by: str
    at: str
    comment: str = ""

    @classmethod
    def from_result(cls, value: Mapping[str, Any]) -> Approval:
        """From an ``ApprovalOperator`` XCom (``chosen_options``, ``responded_by_user``,
        ``responded_at``, ``timedout``) or ``{approved, by, at}``."""
        if "chosen_options" not in value:
            fields = [str(value.get(k) or "") for k in ("by", "at", "comment")]
            return cls(bool(value.get("approved")), *fields)
        user = value.get("responded_by_user") or {}
        by = f"{user.get('name', '')} ({user.get('id', '')})" if user else ""
        moment = value.get("responded_at")
        at_text = moment.isoformat() if isinstance(moment, datetime) else str(moment or "")
        if value.get("timedout"):
            return cls(False, by, at_text, "no human response before the timeout")
        params = value.get("params_input") or {}
        comment = str(params.get("comment", "")) if isinstance(params, Mapping) else ""
        return cls(list(value.get("chosen_options") or []) == ["Approve"], by, at_text, comment)

    def to_dict(self) -> dict[str, Any]:
        return {"approved": self.approved, "by": self.by, "at": self.at, "comment": self.comment}


# ---------------------------------------------------------------------------- checks


def _check_gate(
    gate: str,
    summary: Mapping[str, Any],
    store: EvidenceStore,
    strict: bool,
    scope: Scope | None = None,
    required: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    record, reason, result = _read_gate(gate, summary, store, strict)
    reasons = [reason] if reason else []
    if result is not None and scope is not None:
        subjects, more = check_subjects(gate, result, scope, required)
        record.update(subjects=subjects, dagId=result.dag_id, runId=result.run_id)
        record["mlflowRunId"] = result.mlflow_run_id
        reasons += more
    return record, reasons


def _read_gate(
    gate: str, summary: Mapping[str, Any], store: EvidenceStore, strict: bool
) -> tuple[dict[str, Any], str | None, GateResult | None]:
    uri, digest = summary.get("evidence_uri"), summary.get("evidence_sha256")
    record: dict[str, Any] = {
        "gate": gate,
        "verdict": summary.get("verdict"),
        "report": {"uri": uri, "sha256": digest},
    }
    if not uri or not digest:
        return record, f"gate {gate}: no evidence URI and digest", None
    try:
        result, _ = store.read_report(str(uri), str(digest))
    except (DigestMismatchError, NotFoundError, DataError) as err:
        return record, f"gate {gate}: report cannot be trusted ({err})", None
    if result.gate != gate or result.verdict.value != summary.get("verdict"):
        return (
            record,
            f"gate {gate}: summary says {summary.get('verdict')}, "
            f"report says {result.gate} {result.verdict.value}",
            None,
        )
    if result.verdict.blocks or (strict and result.verdict is Verdict.WARN):
        return (
            record,
            f"gate {gate}: verdict {result.verdict.value}: {result.message or 'see report'}",
            result,
        )
    return record, None, result


def check_gates(
    policy: Policy,
    summaries: Sequence[Mapping[str, Any]],
    store: EvidenceStore,
    block_on_warn: bool = False,
    scope: Scope | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each gate's verdict read from its report (by digest); reasons to refuse, if any.

    With ``scope``, each report must also be about this run's model and datasets.
    """
    by_gate: dict[str, Mapping[str, Any]] = {}
    reasons = []
    for summary in summaries:
        gate = str(summary.get("gate", ""))
        previous = by_gate.get(gate)
        if previous and previous.get("evidence_sha256") != summary.get("evidence_sha256"):
            reasons.append(f"gate {gate}: two different results in this run")
        by_gate[gate] = summary
    if not policy.required_gates:
        reasons.append(f"policy {policy.source} requires no gate: nothing to promote on")
    reasons += [
        f"required gate {g}: no result in this run"
        for g in policy.required_gates
        if g not in by_gate
    ]
    records = []
    for gate, summary in sorted(by_gate.items()):
        required = gate in policy.required_gates
        strict = block_on_warn and required
        record, more = _check_gate(gate, summary, store, strict, scope, required)
        records.append({**record, "required": required})
        reasons += more
    return records, reasons


@dataclass(frozen=True)
class ProvenanceRef:
    statement_uri: str
    statement_sha256: str
    model_sha256: str
    datasets: Mapping[str, str] = field(default_factory=dict)  # sha256 -> name


def check_provenance(
    summary: Mapping[str, Any] | None, store: EvidenceStore
) -> tuple[ProvenanceRef | None, list[str]]:
    """Read the provenance report by digest; its statement must be the stored one."""
    if not summary:
        return None, ["no provenance summary: promotion needs the provenance gate's output"]
    try:
        result, details = store.read_report(
            str(summary["evidence_uri"]), str(summary["evidence_sha256"])
        )
        statement = details["statement"]
        digest = sha256_bytes(statement_bytes(statement))
        store.read_bytes(str(summary["statement_uri"]), digest)
        model_sha256 = str(statement["subject"][0]["digest"]["sha256"])
    except (KeyError, IndexError, TypeError) as err:
        return None, [f"provenance: summary or report lacks {err}"]
    except (DigestMismatchError, NotFoundError, DataError) as err:
        return None, [f"provenance: cannot be trusted ({err})"]
    reasons = [f"provenance: verdict {result.verdict.value}"] if result.verdict.blocks else []
    if summary.get("model_sha256") not in (None, model_sha256):
        reasons.append("provenance: summary's model_sha256 differs from the statement's subject")
    datasets = provenance_datasets(statement)
    ref = ProvenanceRef(str(summary["statement_uri"]), digest, model_sha256, datasets)
    return ref, reasons


def check_approval(approval: Approval | None, required: bool) -> list[str]:
    if approval is None:
        return ["approval required but none was given"] if required else []
    if not approval.approved:
        return [f"not approved ({approval.comment or 'rejected'}) by {approval.by or 'unknown'}"]
    if not approval.by:
        return ["approval has no approver recorded"]
    return []


@dataclass(frozen=True)
class PromotionRequest:
    candidate: Candidate
    gate_summaries: Sequence[Mapping[str, Any]]
    provenance: Mapping[str, Any] | None
    policy: Policy
    approval: Approval | None = None
    require_approval: bool | None = None  # None: the policy decides


def policy_digest(policy: Policy) -> str:
    """The SHA-256 of the policy file (or of its content, for a policy built in code)."""
    if policy.sha256:
        return policy.sha256
    content = {
        "required_gates": policy.required_gates,
        "gates": policy.gates,
        "signing": policy.signing,
    }
    return sha256_bytes(statement_bytes(content))
