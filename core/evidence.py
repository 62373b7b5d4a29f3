"""GateResult, the one record every gate returns, and the evidence store for full reports.

A GateResult is small and JSON-safe: its :meth:`GateResult.summary` goes to XCom, the full
report (the GateResult plus the gate's details) goes to the evidence store, which returns the
report's URI and SHA-256 and verifies that digest whenever the report is read back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from mlsecops_provider.core.errors import DataError, StorageError
from mlsecops_provider.core.storage import (
    S3ClientFactory,
    Storage,
    read_verified,
    safe_segment,
    sha256_bytes,
    storage_for,
)

MAX_SUMMARY_FINDINGS = 10


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"

    @property
    def blocks(self) -> bool:
        """A failed or undecided gate stops the pipeline (fail closed)."""
        return self in (Verdict.FAIL, Verdict.ERROR)


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class GateResult:
    """The outcome of one security gate."""

    gate: str
    verdict: Verdict
    subjects: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    evidence_uri: str | None = None
    evidence_sha256: str | None = None
    tool_versions: dict[str, str] = field(default_factory=dict)
    started_at: str = field(default_factory=utcnow)
    ended_at: str | None = None
    message: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.gate):
            raise ValueError(f"gate name {self.gate!r} must be snake_case")
        object.__setattr__(self, "verdict", Verdict(self.verdict))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise DataError(f"GateResult has unknown fields: {sorted(unknown)}")
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str) -> GateResult:
        return cls.from_dict(json.loads(text))

    def finished(self, **changes: Any) -> GateResult:
        """A copy with ``ended_at`` set (and any other field changed)."""
        return replace(self, ended_at=utcnow(), **changes)

    def summary(self) -> dict[str, Any]:
        """The compact form for XCom: no raw data, at most ten findings."""
        return {
            "gate": self.gate,
            "verdict": self.verdict.value,
            "message": self.message,
            "subjects": self.subjects,
            "metrics": _scalars(self.metrics),
            "findings": self.findings[:MAX_SUMMARY_FINDINGS],
            "findings_total": len(self.findings),
            "evidence_uri": self.evidence_uri,
            "evidence_sha256": self.evidence_sha256,
        }


def _scalars(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}


@dataclass(frozen=True)
class EvidenceRef:
    """Where a report is and what its bytes hash to."""

    uri: str
    sha256: str


class EvidenceStore:
    """Reports under ``<root>/<dag_id>/<run_id>/<gate>/<name>``, addressed by URI + digest."""

    def __init__(
        self,
        root_uri: str,
        s3_client_factory: S3ClientFactory | None = None,
        s3_put_args: dict[str, str] | None = None,
    ) -> None:
        self.root_uri = root_uri.rstrip("/")
        self._storage: Storage = storage_for(self.root_uri, s3_client_factory, s3_put_args)

    @property
    def storage(self) -> Storage:
        return self._storage

    def uri_for(self, dag_id: str, run_id: str, gate: str, name: str) -> str:
        parts = [safe_segment(p) for p in (dag_id, run_id, gate)]
        return "/".join([self.root_uri, *parts, safe_segment(name)])

    def put_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> EvidenceRef:
        if not uri.startswith(self.root_uri + "/"):
            raise StorageError(f"{uri}: outside the evidence store {self.root_uri}")
        self._storage.write_bytes(uri, data, content_type)
        return EvidenceRef(uri=uri, sha256=sha256_bytes(data))

    def put_json(self, uri: str, payload: Mapping[str, Any]) -> EvidenceRef:
        data = json.dumps(payload, indent=2, sort_keys=True, default=str).encode()
        return self.put_bytes(uri, data, "application/json")

    def put_report(
        self, dag_id: str, run_id: str, result: GateResult, details: Mapping[str, Any]
    ) -> GateResult:
        """Store the full report; return the GateResult that points at it."""
        uri = self.uri_for(dag_id, run_id, result.gate, "report.json")
        payload = {"result": result.to_dict(), "details": dict(details)}
        ref = self.put_json(uri, payload)
        return replace(result, evidence_uri=ref.uri, evidence_sha256=ref.sha256)

    def read_bytes(self, uri: str, sha256: str | None) -> bytes:
        return read_verified(self._storage, uri, sha256)

    def read_json(self, uri: str, sha256: str | None) -> dict[str, Any]:
        data = self.read_bytes(uri, sha256)
        try:
            loaded = json.loads(data)
        except ValueError as err:
            raise DataError(f"{uri}: not valid JSON ({err})") from err
        if not isinstance(loaded, dict):
            raise DataError(f"{uri}: expected a JSON object")
        return loaded

    def read_report(self, uri: str, sha256: str) -> tuple[GateResult, dict[str, Any]]:
        """Read a report back, checking its digest first."""
        payload = self.read_json(uri, sha256)
        try:
            return GateResult.from_dict(payload["result"]), dict(payload.get("details", {}))
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{uri}: not a gate report ({err})") from err
