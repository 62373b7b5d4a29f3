"""The pip-audit side of the dependency audit: what is audited, and against which advisories.

Dependencies come from the installed distributions or a pinned requirements file; advisories
from pip-audit's OSV service or :class:`AdvisoryDatabase`, an offline directory of OSV records
(``.json`` / ``.yaml``, any layout; the PyPA database uses ``vulns/<package>/<ID>.yaml``) read
once and indexed by PEP 503 name. A version is affected when it is in an ``ECOSYSTEM`` range
(``introduced`` / ``fixed`` / ``last_affected`` / ``limit``, compared as PEP 440 versions) or
listed in ``affected[].versions``. Fail closed: no records or an unparseable record is an error;
a range with a non-PEP 440 bound affects every version unless the record lists its versions.
Withdrawn records are skipped, as pip-audit's OSV service does.

Imports pip-audit at module level (it subclasses its classes): import this module lazily.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pip_audit._audit import Auditor
from pip_audit._dependency_source import DependencySource
from pip_audit._service import (
    Dependency,
    OsvService,
    ResolvedDependency,
    SkippedDependency,
    VulnerabilityResult,
    VulnerabilityService,
)
from pip_audit._service.interface import VulnerabilityID

from mlsecops_provider.core.errors import AdvisorySourceError, DependencyAuditError, MLSecOpsError
from mlsecops_provider.core.supply_chain.source import AdvisorySource

logger = logging.getLogger(__name__)
RECORD_SUFFIXES = (".json", ".yaml", ".yml")
EVENT_KINDS = {"introduced", "fixed", "last_affected", "limit"}
Events = tuple[Mapping[str, str], ...]


@dataclass(frozen=True)
class Affected:
    """One ``affected[]`` entry of a record, reduced to what version matching needs."""

    ranges: tuple[Events, ...]
    versions: frozenset[Version]  # PEP 440 equality: 0.5 == 0.5.0

    def matches(self, version: Version, record_id: str) -> bool:
        if version in self.versions:
            return True
        for events in self.ranges:
            try:
                if in_range(version, events):
                    return True
            except InvalidVersion:
                if self.versions:
                    continue  # the explicit version list covers this range
                logger.warning("%s: range bound is not PEP 440; treated as affected", record_id)
                return True
        return False

    def fix_versions(self) -> set[Version]:
        fixed = (event["fixed"] for events in self.ranges for event in events if "fixed" in event)
        return {Version(v) for v in fixed if _is_version(v)}


@dataclass(frozen=True)
class Advisory:
    """One record as it concerns one package."""

    id: str
    aliases: tuple[str, ...]
    description: str
    published: datetime | None
    affected: tuple[Affected, ...]

    def result_for(self, version: Version) -> VulnerabilityResult | None:
        """pip-audit's result if ``version`` is affected, else ``None``."""
        if not any(entry.matches(version, self.id) for entry in self.affected):
            return None
        fixes = sorted(set().union(*(entry.fix_versions() for entry in self.affected)))
        ids = [VulnerabilityID(i) for i in (self.id, *self.aliases)]
        return VulnerabilityResult.create(ids, self.description, fixes, self.published)


def installed_dependencies() -> list[Dependency]:
    """The distributions importable by this interpreter (first on ``sys.path`` wins)."""
    from importlib import metadata

    found: dict[str, Dependency] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            where = getattr(dist, "_path", "?")
            found[f"~{where}"] = SkippedDependency(f"<unnamed {where}>", "no Name in metadata")
            continue
        key = canonicalize_name(name)
        if key in found:
            continue
        try:
            found[key] = ResolvedDependency(name=name, version=Version(dist.version))
        except InvalidVersion:
            found[key] = SkippedDependency(name, f"version {dist.version!r} is not PEP 440")
    return [found[key] for key in sorted(found)]


def requirement_dependencies(path: str | Path) -> list[Dependency]:
    """The ``name==version`` pins of a requirements file (``-r`` includes followed), offline.

    An unpinned or invalid line is an error naming its file and line; URL and editable
    requirements cannot be audited and come back as pip-audit ``SkippedDependency``.
    """
    from pip_requirements_parser import InstallationError, RequirementsFile

    req_path = Path(path)
    if not req_path.is_file():
        raise DependencyAuditError(f"{req_path}: requirements file not found")
    try:
        parsed = RequirementsFile.from_file(str(req_path), include_nested=True)
    except (InstallationError, OSError) as err:
        raise DependencyAuditError(f"{req_path}: {str(err).split('|n')[0]}") from err
    for bad in parsed.invalid_lines:
        reason = bad.error_message.splitlines()[0]
        raise DependencyAuditError(f"{_where(bad)}: invalid requirement {_line(bad)} ({reason})")
    found: dict[str, Dependency] = {}
    for req in parsed.requirements:
        if req.marker is not None and not req.marker.evaluate():
            continue
        dep = _pinned(req)
        previous = found.setdefault(canonicalize_name(dep.name), dep)
        if previous != dep:
            raise DependencyAuditError(f"{_where(req)}: {dep.name} is pinned twice, differently")
    return list(found.values())


def _pinned(req: Any) -> Dependency:
    if req.req is None or req.is_url or req.is_editable:
        return SkippedDependency(
            req.name or req.requirement_line.line, "URL or editable requirement"
        )
    specs = list(req.specifier or ())
    if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
        raise DependencyAuditError(
            f"{_where(req)}: {_line(req)} is not pinned (use name==version, e.g. from pip freeze)"
        )
    try:
        return ResolvedDependency(name=req.name, version=Version(specs[0].version))
    except InvalidVersion as err:
        raise DependencyAuditError(f"{_where(req)}: {_line(req)}: {err}") from err


def _where(item: Any) -> str:
    return f"{item.requirement_line.filename}:{item.requirement_line.line_number}"


def _line(item: Any) -> str:
    return repr(item.requirement_line.line)


class DependencyList(DependencySource):
    """Dependencies collected beforehand, as a pip-audit dependency source."""

    def __init__(self, deps: Sequence[Dependency]) -> None:
        self._deps = list(deps)

    def collect(self) -> Iterator[Dependency]:
        yield from self._deps

    def fix(self, fix_version: Any) -> None:
        raise NotImplementedError("an audit does not change dependencies")


def make_service(source: AdvisorySource) -> VulnerabilityService:
    """pip-audit's service for a source: the local database, or OSV at a URL."""
    if source.advisory_db:
        return AdvisoryDatabase(source.advisory_db)
    return OsvService(
        cache_dir=Path(source.cache_dir) if source.cache_dir else None,
        timeout=source.timeout,
        osv_url=source.osv_url or OsvService.DEFAULT_OSV_URL,
    )


def run_audit(
    service: VulnerabilityService, deps: Sequence[Dependency], label: str
) -> dict[Dependency, list[VulnerabilityResult]]:
    """pip-audit's Auditor over ``deps`` (results merged by alias); any failure is an error."""
    try:
        return dict(Auditor(service).audit(DependencyList(deps)))
    except MLSecOpsError:
        raise
    except Exception as err:  # a service that cannot answer must never read as "clean"
        raise AdvisorySourceError(
            f"advisory source {label} did not answer ({_reason(err)})"
        ) from err


def _reason(err: BaseException) -> str:
    import requests

    cause = err.__cause__ if isinstance(err.__cause__, Exception) else err
    if isinstance(cause, requests.ConnectionError):
        return "cannot connect"
    if isinstance(cause, requests.Timeout):
        return "timed out"
    text = " ".join(str(cause).split()) or type(cause).__name__
    return f"{type(cause).__name__}: {text}"


def in_range(version: Version, events: Sequence[Mapping[str, str]]) -> bool:
    """OSV's evaluation of one ECOSYSTEM range; InvalidVersion on a non-PEP 440 bound."""
    affected = False
    for event in sorted(events, key=lambda e: Version(next(iter(e.values())))):
        if "introduced" in event:
            affected = affected or version >= Version(event["introduced"])
        elif "fixed" in event or "limit" in event:
            affected = affected and version < Version(event.get("fixed") or event["limit"])
        elif "last_affected" in event:
            affected = affected and version <= Version(event["last_affected"])
    return affected


def _is_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


class AdvisoryDatabase(VulnerabilityService):
    """pip-audit ``VulnerabilityService`` answering from a local directory of OSV records."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._index: dict[str, list[Advisory]] = defaultdict(list)
        self._severity: dict[str, str] = {}
        self.record_count = 0
        self.sha256 = self._load()

    def query(self, spec: Dependency) -> tuple[Dependency, list[VulnerabilityResult]]:
        if spec.is_skipped():
            return spec, []
        version = cast(ResolvedDependency, spec).version
        found = (a.result_for(version) for a in self._index.get(spec.canonical_name, ()))
        return spec, [result for result in found if result is not None]

    def severity(self, vuln_ids: set[str]) -> str | None:
        """The first severity any of these IDs (a result's id and aliases) carries."""
        return next((self._severity[i] for i in sorted(vuln_ids) if i in self._severity), None)

    def describe(self) -> dict[str, str]:
        """Record count and, if a ``SNAPSHOT`` file says it, the commit and date of the copy."""
        info = {"advisory_db_records": str(self.record_count)}
        snapshot = self.root / "SNAPSHOT"
        if snapshot.is_file():
            info["advisory_db_snapshot"] = snapshot.read_text(encoding="utf-8").strip()
        return info

    def _load(self) -> str:
        if not self.root.is_dir():
            raise DependencyAuditError(f"{self.root}: advisory database is not a directory")
        digest = hashlib.sha256()
        for path in sorted(self._record_files()):
            raw = path.read_bytes()
            digest.update(
                f"{path.relative_to(self.root)}\0{hashlib.sha256(raw).hexdigest()}\n".encode()
            )
            self._add(_parse_record(path, raw), path)
        if self.record_count == 0:
            raise DependencyAuditError(f"{self.root}: no OSV records (*.json, *.yaml) found")
        logger.info("advisory database %s: %d records", self.root, self.record_count)
        return digest.hexdigest()

    def _record_files(self) -> list[Path]:
        return [
            p
            for p in self.root.rglob("*")
            if p.suffix in RECORD_SUFFIXES and p.is_file() and not p.name.startswith(".")
        ]

    def _add(self, record: Mapping[str, Any], path: Path) -> None:
        self.record_count += 1
        if record.get("withdrawn"):
            return
        aliases = tuple(str(a) for a in _list(record.get("aliases"), path, "aliases"))
        for name, entries in _affected_by_package(record, path).items():
            self._index[name].append(_advisory(record, aliases, entries))
        severity = _severity(record)
        if severity:
            for vuln_id in (record["id"], *aliases):
                self._severity.setdefault(vuln_id, severity)


def _parse_record(path: Path, raw: bytes) -> Mapping[str, Any]:
    """Read one OSV record; YAML scalars stay strings (no float or date surprises)."""
    import yaml

    try:
        if path.suffix == ".json":
            record = json.loads(raw)
        else:
            record = yaml.load(raw, Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
    except (ValueError, yaml.YAMLError) as err:
        raise DependencyAuditError(f"{path}: not a valid OSV record ({err})") from err
    if not isinstance(record, Mapping) or not isinstance(record.get("id"), str):
        raise DependencyAuditError(f"{path}: not an OSV record (no 'id')")
    schema = str(record.get("schema_version") or "1.0.0")
    if not schema.startswith("1."):
        raise DependencyAuditError(f"{path}: unsupported OSV schema_version {schema}")
    return record


def _affected_by_package(record: Mapping[str, Any], path: Path) -> dict[str, list[Affected]]:
    """The PyPI ``affected[]`` entries of a record, grouped by canonical package name."""
    grouped: dict[str, list[Affected]] = defaultdict(list)
    for entry in _list(record.get("affected"), path, "affected"):
        package = entry.get("package") if isinstance(entry, Mapping) else None
        if not isinstance(package, Mapping) or not package.get("name"):
            raise DependencyAuditError(f"{path}: affected[] entry without package.name")
        if package.get("ecosystem") != "PyPI":
            continue
        ranges = tuple(
            _events(r, path)
            for r in _list(entry.get("ranges"), path, "ranges")
            if isinstance(r, Mapping) and r.get("type") == "ECOSYSTEM"
        )
        listed = (str(v) for v in _list(entry.get("versions"), path, "versions"))
        versions = frozenset(Version(v) for v in listed if _is_version(v))
        grouped[canonicalize_name(str(package["name"]))].append(Affected(ranges, versions))
    return grouped


def _events(osv_range: Mapping[str, Any], path: Path) -> Events:
    events = _list(osv_range.get("events"), path, "events")
    if not all(isinstance(e, Mapping) and len(e) == 1 and set(e) <= EVENT_KINDS for e in events):
        raise DependencyAuditError(f"{path}: an ECOSYSTEM range has a malformed event")
    return tuple({str(k): str(v) for k, v in event.items()} for event in events)


def _list(value: Any, path: Path, key: str) -> list[Any]:
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise DependencyAuditError(f"{path}: {key} must be a list")
    return value


def _advisory(
    record: Mapping[str, Any], aliases: tuple[str, ...], entries: list[Affected]
) -> Advisory:
    description = str(record.get("summary") or record.get("details") or "N/A")
    return Advisory(
        id=record["id"],
        aliases=aliases,
        description=" ".join(description.split()),
        published=_timestamp(record.get("published")),
        affected=tuple(entries),
    )


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _severity(record: Mapping[str, Any]) -> str | None:
    """A CVSS vector from ``severity[]``, else ``database_specific.severity`` (e.g. HIGH)."""
    for item in record.get("severity") or []:
        if isinstance(item, Mapping) and item.get("score"):
            return str(item["score"])
    specific = record.get("database_specific")
    if isinstance(specific, Mapping) and specific.get("severity"):
        return str(specific["severity"])
    return None
