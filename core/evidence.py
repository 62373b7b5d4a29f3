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
    dag_id: str | None = None  # the DAG run the report belongs to (set by record_gate)
    run_id: str | None = None
    mlflow_run_id: str | None = None

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

    def subject_refs(self) -> list[Subject]:
        """The subjects as (kind, name, digest), see :func:`parse_subjects`."""
        return parse_subjects(self.subjects)

    def summary(self) -> dict[str, Any]:
        """The compact form for XCom: no raw data, at most ten findings."""
        return {
            "gate": self.gate,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "mlflow_run_id": self.mlflow_run_id,
            "verdict": self.verdict.value,
            "message": self.message,
            "subjects": self.subjects,
            "metrics": _scalars(self.metrics),
            "findings": self.findings[:MAX_SUMMARY_FINDINGS],
            "findings_total": len(self.findings),
            "evidence_uri": self.evidence_uri,
            "evidence_sha256": self.evidence_sha256,
        }


# Subject keys are ``<kind>`` or ``<kind>:<name>``; the older one-word names of the gates map
# to a kind here. Values are ``sha256:<hex>`` or ``<hex>``; a value that is not a SHA-256
# (e.g. ``path``) is no subject.
SUBJECT_KINDS = ("model", "dataset", "reference", "champion", "sbom", "environment", "other")
_SUBJECT_ALIASES = {
    "data": ("dataset", "data"),
    "input": ("dataset", "input"),
    "output": ("dataset", "output"),
    "candidate": ("model", "candidate"),
    "champion": ("champion", "champion"),
    "reference": ("reference", "reference"),
    "sbom": ("sbom", "sbom"),
    "model": ("model", "model"),
}
_SHA256_VALUE = re.compile(r"(?:sha256:)?([0-9a-f]{64})")


@dataclass(frozen=True)
class Subject:
    """What a gate checked: its kind (model, dataset, sbom, ...), a name, the SHA-256."""

    kind: str
    name: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "sha256": self.sha256}


def parse_subjects(subjects: Mapping[str, Any]) -> list[Subject]:
    """``{"model": "<hex>", "dataset:raw": "sha256:<hex>", "path": "..."}`` as Subjects."""
    out = []
    for key, value in sorted(subjects.items()):
        match = _SHA256_VALUE.fullmatch(str(value))
        if not match:
            continue
        kind, _, name = str(key).partition(":")
        if not name:
            kind, name = _SUBJECT_ALIASES.get(kind, ("other", kind))
        elif kind not in SUBJECT_KINDS:
            kind, name = "other", str(key)
        out.append(Subject(kind, name, match.group(1)))
    return out


def evidence_segment(value: str) -> str:
    """One path segment for a DAG id, run id, gate or file name, escaped injectively.

    ``[A-Za-z0-9_-]`` and inner dots stay; every other byte of the UTF-8 form (``=`` too, and
    a leading dot) becomes ``=XX``, so two different values never share a folder and no
    segment is ``.`` or ``..``.
    """
    if not value:
        raise ValueError("an empty value gives no path segment")
    out = []
    for index, byte in enumerate(value.encode()):
        char = chr(byte)
        keep = char.isascii() and (char.isalnum() or char in "_-" or (char == "." and index))
        out.append(char if keep else f"={byte:02X}")
    return "".join(out)


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
        parts = [evidence_segment(p) for p in (dag_id, run_id, gate, name)]
        return "/".join([self.root_uri, *parts])

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
