"""Supply-chain audit: known vulnerabilities in the Python dependencies a pipeline runs with.

Audits the installed distributions or a requirements file of ``name==version`` pins through
pip-audit's services against a local OSV directory (:mod:`.advisory_db`, air-gapped), an
OSV-compatible URL, or the public OSV API (default). Returns one GateResult (gate
``dependency_audit``) and a CycloneDX JSON SBOM of the audited set. Policy section
``gates.dependency_audit``: ``fail_on_vulnerable``, ``fail_on_skipped``, ``ignore`` (``id``,
``reason``, ISO ``expires``; expired entries stop ignoring). Fail closed: anything that prevents
the check raises :class:`DependencyAuditError`, never a clean result.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from mlsecops_provider.core.errors import ConfigError, DependencyAuditError
from mlsecops_provider.core.evidence import GateResult, Verdict, utcnow
from mlsecops_provider.core.policy import Policy
from mlsecops_provider.core.supply_chain.source import AdvisorySource

logger = logging.getLogger(__name__)
GATE = "dependency_audit"
IGNORE_FIELDS = ("id", "reason", "expires")
Results = Mapping[Any, Sequence[Any]]  # pip-audit Dependency -> [VulnerabilityResult]


@dataclass(frozen=True)
class IgnoreEntry:
    """An accepted vulnerability: its ID (or alias), why, and until when (inclusive)."""

    id: str
    reason: str
    expires: date

    @classmethod
    def parse(cls, raw: Any, where: str) -> IgnoreEntry:
        """Validate one policy entry; ``ValueError`` names the entry and the field."""
        if isinstance(raw, IgnoreEntry):
            return raw
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: must be a mapping with {', '.join(IGNORE_FIELDS)}")
        unknown = set(raw) - set(IGNORE_FIELDS)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
        vuln_id = raw.get("id")
        if not isinstance(vuln_id, str) or not vuln_id.strip():
            raise ValueError(f"{where}: id must be a non-empty string")
        where = f"{where} ({vuln_id})"
        reason = raw.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"{where}: reason must be a non-empty string")
        return cls(vuln_id.strip(), reason.strip(), _iso_date(raw.get("expires"), where))

    def expired(self, today: date) -> bool:
        return today > self.expires

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "reason": self.reason, "expires": self.expires.isoformat()}


def _iso_date(value: Any, where: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{where}: expires must be an ISO date (YYYY-MM-DD), got {value!r}")


@dataclass(frozen=True)
class DependencyAuditConfig:
    """The ``gates.dependency_audit`` policy section."""

    fail_on_vulnerable: bool = True
    fail_on_skipped: bool = True
    ignore: tuple[Any, ...] = ()  # IgnoreEntry after validation (raw mappings accepted)

    def __post_init__(self) -> None:
        entries = tuple(IgnoreEntry.parse(raw, f"ignore[{i}]") for i, raw in enumerate(self.ignore))
        object.__setattr__(self, "ignore", entries)

    @classmethod
    def from_policy(cls, policy: Policy) -> DependencyAuditConfig:
        return policy.config(GATE, cls)

    def match(self, vuln_ids: set[str]) -> IgnoreEntry | None:
        """The entry naming one of these IDs; an unexpired entry wins over an expired one."""
        matches = [entry for entry in self.ignore if entry.id in vuln_ids]
        return max(matches, key=lambda entry: entry.expires, default=None)


def audit_dependencies(
    *,
    requirements: str | Path | None = None,
    installed: bool = False,
    source: AdvisorySource | None = None,
    config: DependencyAuditConfig | None = None,
    today: date | None = None,
) -> tuple[GateResult, dict[str, Any]]:
    """Audit a requirements file or the installed environment; ``details["sbom"]`` is the SBOM.

    The SBOM is CycloneDX 1.6 JSON text; ``subjects["sbom"]`` is the SHA-256 of its UTF-8 bytes
    (see :func:`sbom_bytes`). Raises :class:`DependencyAuditError` when it cannot check.
    """
    from importlib import metadata

    from mlsecops_provider.core.supply_chain import advisory_db

    source, config = source or AdvisorySource(), config or DependencyAuditConfig()
    today, started = today or datetime.now(UTC).date(), utcnow()
    deps = _collect(requirements, installed)
    service = advisory_db.make_service(source)
    results = advisory_db.run_audit(service, deps, source.label)
    offline = isinstance(service, advisory_db.AdvisoryDatabase)
    severity = service.severity if offline else lambda ids: None
    findings = _findings(results, config, today, severity)
    metrics = _metrics(results, findings, config, today)
    verdict, message = _verdict(metrics, config)
    tools = {name: metadata.version(name) for name in ("pip-audit", "cyclonedx-python-lib")}
    tools.update(advisory_source=source.label, **(service.describe() if offline else {}))
    sbom = build_sbom(results, findings, tools)
    subjects = {"dependencies": _digest(_pins(results).encode()), "sbom": _digest(sbom.encode())}
    if requirements is not None:
        subjects["requirements"] = _digest(Path(requirements).read_bytes())
    if offline:
        subjects["advisory_db"] = f"sha256:{service.sha256}"
    result = GateResult(
        gate=GATE,
        verdict=verdict,
        subjects=subjects,
        metrics=metrics,
        findings=[_brief(finding) for finding in findings],
        tool_versions=tools,
        started_at=started,
        message=message,
    ).finished()
    details = {
        "input": f"requirements:{requirements}" if requirements is not None else "installed",
        "advisory_source": source.label,
        "dependencies": [{"name": d.name, "version": str(d.version)} for d in _resolved(results)],
        "ignores": _ignore_report(config, findings, today),
        "sbom": sbom,
    }
    return result, details


def _collect(requirements: str | Path | None, installed: bool) -> list[Any]:
    from mlsecops_provider.core.supply_chain.advisory_db import (
        installed_dependencies,
        requirement_dependencies,
    )

    if (requirements is None) == (not installed):
        raise ConfigError("dependency audit: give either requirements or installed=True")
    deps = installed_dependencies() if installed else requirement_dependencies(str(requirements))
    if not deps:
        raise DependencyAuditError(f"{requirements}: no dependencies to audit")
    return deps


def sbom_bytes(details: Mapping[str, Any]) -> bytes:
    """The SBOM of an audit's details, as the bytes whose digest is ``subjects["sbom"]``."""
    return str(details["sbom"]).encode("utf-8")


def _resolved(results: Results) -> list[Any]:
    return [dep for dep in results if not dep.is_skipped()]


def _pins(results: Results) -> str:
    return "\n".join(sorted(f"{d.canonical_name}=={d.version}" for d in _resolved(results)))


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _findings(
    results: Results,
    config: DependencyAuditConfig,
    today: date,
    severity: Callable[[set[str]], str | None],
) -> list[dict[str, Any]]:
    """One finding per vulnerable (package, advisory) and per skipped package; worst first."""
    findings: list[dict[str, Any]] = []
    for dep, vulns in results.items():
        if dep.is_skipped():
            findings.append({"package": dep.name, "status": "skipped", "reason": dep.skip_reason})
            continue
        for vuln in vulns:
            ids = {vuln.id, *vuln.aliases}
            finding = {
                "package": dep.name,
                "version": str(dep.version),
                "id": vuln.id,
                "aliases": sorted(vuln.aliases),
                "fix_versions": [str(v) for v in vuln.fix_versions],
                "severity": severity(ids),
                "description": vuln.description,
                "status": "vulnerable",
            }
            entry = config.match(ids)
            if entry is not None:
                finding["ignore"] = {**entry.to_dict(), "expired": entry.expired(today)}
                finding["status"] = "vulnerable" if entry.expired(today) else "ignored"
            findings.append(finding)
    order = {"vulnerable": 0, "skipped": 1, "ignored": 2}
    return sorted(findings, key=lambda f: (order[f["status"]], f["package"].lower(), f.get("id")))


def _brief(finding: dict[str, Any], limit: int = 200) -> dict[str, Any]:
    """The finding for the GateResult: descriptions cut short (the SBOM keeps them whole)."""
    text = finding.get("description")
    if text is None or len(text) <= limit:
        return finding
    return {**finding, "description": text[: limit - 1].rstrip() + "…"}


def _metrics(
    results: Results, findings: list[dict[str, Any]], config: DependencyAuditConfig, today: date
) -> dict[str, int]:
    vulnerable = [f for f in findings if f["status"] == "vulnerable"]
    return {
        "packages_audited": len(_resolved(results)),
        "packages_skipped": sum(1 for f in findings if f["status"] == "skipped"),
        "vulnerable_packages": len({canonicalize_name(f["package"]) for f in vulnerable}),
        "vulnerabilities": len(vulnerable),
        "ignored": sum(1 for f in findings if f["status"] == "ignored"),
        "expired_ignores": sum(1 for entry in config.ignore if entry.expired(today)),
    }


def _verdict(metrics: Mapping[str, int], config: DependencyAuditConfig) -> tuple[Verdict, str]:
    audited, vulns = metrics["packages_audited"], metrics["vulnerabilities"]
    skipped = metrics["packages_skipped"]
    problems = []
    if vulns:
        affected = f"{metrics['vulnerable_packages']} of {audited} packages"
        problems.append(f"{vulns} known vulnerabilit{'y' if vulns == 1 else 'ies'} in {affected}")
    if skipped:
        problems.append(f"{skipped} package(s) could not be audited")
    notes = [f"{metrics['ignored']} ignored"] if metrics["ignored"] else []
    if metrics["expired_ignores"]:
        notes.append(f"{metrics['expired_ignores']} expired ignore(s) no longer apply")
    message = "; ".join((problems or [f"no known vulnerabilities in {audited} packages"]) + notes)
    if not problems:
        return Verdict.PASS, message
    failed = (vulns and config.fail_on_vulnerable) or (skipped and config.fail_on_skipped)
    return (Verdict.FAIL if failed else Verdict.WARN), message


def _ignore_report(
    config: DependencyAuditConfig, findings: list[dict[str, Any]], today: date
) -> dict[str, list[dict[str, str]]]:
    used = {f["ignore"]["id"] for f in findings if "ignore" in f}
    return {
        "applied": [e.to_dict() for e in config.ignore if e.id in used and not e.expired(today)],
        "expired": [e.to_dict() for e in config.ignore if e.expired(today)],
        "unused": [e.to_dict() for e in config.ignore if e.id not in used],
    }


def build_sbom(results: Results, findings: list[dict[str, Any]], tools: Mapping[str, str]) -> str:
    """A CycloneDX 1.6 JSON SBOM: one component (with purl) per audited package, plus the
    vulnerabilities found (ignored ones carry the policy reason as their analysis)."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion
    from packageurl import PackageURL

    bom = Bom()
    refs: dict[str, str] = {}  # package name as audited -> purl, the component's bom-ref
    for dep in _resolved(results):
        purl = PackageURL(type="pypi", name=dep.canonical_name, version=str(dep.version))
        ref = purl.to_string()
        if ref not in refs.values():
            bom.components.add(
                Component(name=dep.name, version=str(dep.version), purl=purl, bom_ref=ref)
            )
        refs[dep.name] = ref
    for finding in findings:
        if finding["status"] != "skipped":
            bom.vulnerabilities.add(_sbom_vulnerability(finding, refs[finding["package"]], tools))
    tool = Component(type=ComponentType.APPLICATION, name="pip-audit", version=tools["pip-audit"])
    bom.metadata.tools.components.add(tool)
    return make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=2)


def _sbom_vulnerability(finding: Mapping[str, Any], ref: str, tools: Mapping[str, str]) -> Any:
    from cyclonedx.model.vulnerability import (
        BomTarget,
        Vulnerability,
        VulnerabilityAnalysis,
        VulnerabilityReference,
        VulnerabilitySource,
    )

    ignore, analysis = finding.get("ignore"), None
    if ignore and finding["status"] == "ignored":
        detail = f"ignored by policy until {ignore['expires']}: {ignore['reason']}"
        analysis = VulnerabilityAnalysis(detail=detail)
    fixes = finding["fix_versions"]
    return Vulnerability(
        id=finding["id"],
        source=VulnerabilitySource(name=tools["advisory_source"]),
        references=[
            VulnerabilityReference(id=alias, source=VulnerabilitySource(name=alias.split("-")[0]))
            for alias in finding["aliases"]
        ],
        description=finding["description"],
        recommendation=f"Upgrade to {' or '.join(fixes)}" if fixes else None,
        analysis=analysis,
        affects=[BomTarget(ref=ref)],
    )
