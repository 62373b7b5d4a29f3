"""The evidence behind one gate task: its report read back and verified.

Every gate summary points at its report by URI + SHA-256; the report is read back through
:meth:`EvidenceStore.read_report`, so a report whose bytes changed shows as ``tampered``,
never as the verdict it claims. Only reports under the configured evidence store, in the
folder of their own DAG, are read (:func:`evidence_dag_segment`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from mlsecops_provider.core.errors import (
    DataError,
    DigestMismatchError,
    NotFoundError,
    StorageError,
)
from mlsecops_provider.core.evidence import EvidenceStore, GateResult, evidence_segment

log = logging.getLogger(__name__)
LINK_KEY = "_link_EvidenceLink"  # operators._runtime.EVIDENCE_LINK_KEY
SUMMARY_KEYS = ("mlsecops_gate", "return_value")  # a dedicated key wins over return_value
EVIDENCE_ROUTE = "/mlsecops/evidence"
NO_DIGEST = "no report digest recorded (the task ended before returning its summary)"
_SEGMENT = re.compile(r"[A-Za-z0-9_=-][A-Za-z0-9._=-]*")  # as core.evidence.evidence_segment


class Integrity(StrEnum):
    """What reading a gate's report back found."""

    VERIFIED = "verified"
    TAMPERED = "tampered"  # digest mismatch, or the report disagrees with the summary
    MISSING = "missing"  # no object at the URI
    UNREADABLE = "unreadable"  # outside the store, not a report, or the store failed
    UNVERIFIED = "unverified"  # no digest was recorded (e.g. the task failed first)


VERDICT_CHOICES = ("pass", "warn", "fail", "error", *[i.value for i in Integrity][1:])


@dataclass(frozen=True)
class GateView:
    """One gate task of one DAG run, as the reviewer sees it."""

    task_id: str
    map_index: int
    task_state: str | None
    gate: str
    verdict: str  # the report's verdict when verified, else the integrity state
    integrity: Integrity
    detail: str = ""
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    findings_total: int = 0
    evidence_uri: str | None = None
    evidence_sha256: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    subjects: dict[str, Any] = field(default_factory=dict)  # what the verified report checked

    def to_dict(self, with_details: bool = False) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "details"}
        data["integrity"] = self.integrity.value
        if with_details:
            data["details"] = self.details
        return data


def evidence_dag_segment(root_uri: str, uri: str) -> str:
    """The DAG folder of an evidence URI; ``ValueError`` unless it is safely under the root.

    Evidence URIs are ``<root>/<dag>/<run>/<gate>/<name>`` made of :func:`evidence_segment`
    parts (an injective escape: no two DAG ids share a folder, no segment starts with a
    dot), so anything else (``..``, ``%``-escapes, query strings, another root) is refused.
    The message names only what the client sent.
    """
    prefix = root_uri.rstrip("/") + "/"
    if not uri.startswith(prefix):
        raise ValueError(f"{uri}: not an evidence path of this store")
    segments = uri[len(prefix) :].split("/")
    if len(segments) < 2 or not all(_SEGMENT.fullmatch(s) for s in segments):
        raise ValueError(f"{uri}: not an evidence path")
    return segments[0]


def dag_for_segment(segment: str, dag_ids: Iterable[str]) -> str | None:
    """The DAG (among ``dag_ids``) whose evidence folder is ``segment``."""
    return next((d for d in sorted(dag_ids) if _safe(d) == segment), None)


def _safe(value: str) -> str | None:
    try:
        return evidence_segment(value)
    except ValueError:
        return None


def verify_gate(
    store: EvidenceStore,
    dag_id: str,
    task: tuple[str, int],
    xcoms: Mapping[str, Any],
    states: Mapping[tuple[str, int], str | None],
) -> GateView:
    """Read the gate's report back and check it against the summary the task returned."""
    summary = next((xcoms[k] for k in SUMMARY_KEYS if k in xcoms), None)
    uri, sha256 = parse_evidence_link(xcoms.get(LINK_KEY))
    if summary:
        uri, sha256 = summary.get("evidence_uri"), summary.get("evidence_sha256")
    base = GateView(
        task_id=task[0],
        map_index=task[1],
        task_state=states.get(task),
        gate=str(summary.get("gate")) if summary else _gate_from_uri(uri) or task[0],
        verdict=Integrity.UNVERIFIED.value,
        integrity=Integrity.UNVERIFIED,
        evidence_uri=str(uri) if uri else None,
        evidence_sha256=str(sha256) if sha256 else None,
    )
    if not uri or not sha256:
        return replace(base, detail=NO_DIGEST)
    try:
        if evidence_dag_segment(store.root_uri, str(uri)) != _safe(dag_id):
            raise ValueError(f"{uri}: not in the evidence folder of DAG {dag_id}")
        result, details = store.read_report(str(uri), str(sha256))
    except (ValueError, DigestMismatchError, NotFoundError, StorageError, DataError) as err:
        return _unverified(base, err)
    claimed = (summary.get("gate"), summary.get("verdict")) if summary else (base.gate, None)
    if result.gate != claimed[0] or claimed[1] not in (None, result.verdict.value):
        said = f"{result.gate}={result.verdict.value}"
        return _flagged(base, Integrity.TAMPERED, f"{uri}: report says {said}, task said {claimed}")
    return _verified(base, result, details)


def _unverified(base: GateView, err: Exception) -> GateView:
    if isinstance(err, DigestMismatchError):
        return _flagged(base, Integrity.TAMPERED, str(err))
    if isinstance(err, NotFoundError):
        return _flagged(base, Integrity.MISSING, str(err))
    return _flagged(base, Integrity.UNREADABLE, str(err))


def _flagged(base: GateView, integrity: Integrity, detail: str) -> GateView:
    log.warning("gate %s of task %s: %s (%s)", base.gate, base.task_id, integrity.value, detail)
    return replace(base, verdict=integrity.value, integrity=integrity, detail=detail)


def _verified(base: GateView, result: GateResult, details: dict[str, Any]) -> GateView:
    summary = result.summary()
    return replace(
        base,
        verdict=result.verdict.value,
        integrity=Integrity.VERIFIED,
        message=result.message,
        metrics=summary["metrics"],
        findings=list(result.findings),
        findings_total=len(result.findings),
        details=details,
        subjects=dict(result.subjects),
    )


def evidence_url(uri: str, sha256: str, base_url: str = "") -> str:
    """The gate review's link to a report: ``<base_url>/mlsecops/evidence?uri=…&sha256=…``."""
    from urllib.parse import urlencode

    query = urlencode({"uri": uri, "sha256": sha256})
    return f"{base_url.rstrip('/')}{EVIDENCE_ROUTE}?{query}"


def parse_evidence_link(value: Any) -> tuple[str | None, str | None]:
    """``(uri, sha256)`` of an evidence link XCom: a report URI, or an :func:`evidence_url`."""
    from urllib.parse import parse_qs, urlsplit

    if not isinstance(value, str) or not value:
        return None, None
    parts = urlsplit(value)
    if not parts.path.endswith(EVIDENCE_ROUTE):
        return value, None
    query = parse_qs(parts.query)
    return query.get("uri", [""])[0] or None, query.get("sha256", [""])[0] or None


def _gate_from_uri(uri: Any) -> str | None:
    parts = str(uri).rstrip("/").split("/") if uri else []
    return parts[-2] if len(parts) >= 2 else None
