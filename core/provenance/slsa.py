"""SLSA Provenance v1 for a training run, as an in-toto Statement v1.

The statement's subject is the model: its name and the root digest from
:mod:`~mlsecops_provider.core.hashing` (for a model directory this equals the subject digest
of an OpenSSF model-signing signature over the same directory; for a single file it is the
plain SHA-256 of its bytes). ``resolvedDependencies`` name the datasets, code, environment
and base model the run used, ``byproducts`` the gate reports, each with a SHA-256.

Helpers compute the code digest (git commit plus a manifest digest of given folders) and the
environment digest (the sorted ``name==version`` list of installed distributions).
:func:`validate_statement` checks the shape (fail closed) and names the first bad field.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from mlsecops_provider.core.data.datasets import DatasetRef
from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.evidence import GateResult
from mlsecops_provider.core.hashing import hash_path
from mlsecops_provider.core.manifest import Manifest

log = logging.getLogger(__name__)

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:airflow-provider-mlsecops:build-type:airflow-training-run:v1"
GIT_TIMEOUT_SECONDS = 5.0
_HEX = re.compile(r"[0-9a-f]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def rfc3339(value: datetime | str) -> str:
    """A timezone-aware time as an RFC 3339 UTC string ending in ``Z``."""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except (TypeError, ValueError) as err:
        raise DataError(f"timestamp {value!r}: not an ISO 8601 / RFC 3339 time") from err
    if moment.tzinfo is None:
        raise DataError(f"timestamp {value!r}: has no time zone")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Resource:
    """One in-toto ResourceDescriptor: name, optional URI, SHA-256 and other digests."""

    name: str
    sha256: str
    uri: str | None = None
    other_digests: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bare = self.sha256.removeprefix("sha256:")
        if not _SHA256.fullmatch(bare):
            raise DataError(f"resource {self.name!r}: sha256 {self.sha256!r} is not 64 hex chars")
        if not self.name:
            raise DataError(f"resource with sha256 {bare}: name is empty")
        object.__setattr__(self, "sha256", bare)

    def descriptor(self, with_uri: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if with_uri and self.uri:
            out["uri"] = self.uri
        out["digest"] = {"sha256": self.sha256, **self.other_digests}
        return out

    @classmethod
    def from_manifest(
        cls, manifest: Manifest, name: str | None = None, uri: str | None = None
    ) -> Resource:
        return cls(name=name or manifest.name, sha256=manifest.root_digest, uri=uri)

    @classmethod
    def from_dataset(cls, ref: DatasetRef, name: str | None = None) -> Resource:
        default = ref.uri.rstrip("/").rsplit("/", 1)[-1]
        return cls(name=name or default, sha256=ref.sha256, uri=ref.uri)

    @classmethod
    def from_gate(cls, result: GateResult) -> Resource:
        """A gate report as a byproduct; a result without stored evidence is an error."""
        if not result.evidence_uri or not result.evidence_sha256:
            raise DataError(f"gate {result.gate}: has no evidence_uri/evidence_sha256")
        return cls(
            name=f"gate:{result.gate}", sha256=result.evidence_sha256, uri=result.evidence_uri
        )


def model_subject(path: str | os.PathLike[str], name: str | None = None) -> Resource:
    """The model file or directory as a statement subject (hashes it)."""
    return Resource.from_manifest(hash_path(path), name=name)


@dataclass(frozen=True)
class RunInfo:
    """Who built the model and when: ``runDetails.builder`` and ``runDetails.metadata``."""

    builder_id: str
    invocation_id: str
    started_on: str
    finished_on: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "started_on", rfc3339(self.started_on))
        object.__setattr__(self, "finished_on", rfc3339(self.finished_on))
        if not self.builder_id or not self.invocation_id:
            raise DataError("run info: builder_id and invocation_id must not be empty")

    @classmethod
    def for_dag_run(
        cls,
        builder_id: str,
        dag_id: str,
        run_id: str,
        started_on: datetime | str,
        finished_on: datetime | str,
    ) -> RunInfo:
        return cls(builder_id, f"{dag_id}/{run_id}", rfc3339(started_on), rfc3339(finished_on))


def _json_safe(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    try:
        return dict(json.loads(json.dumps(value, allow_nan=False)))
    except (TypeError, ValueError) as err:
        raise DataError(f"provenance {where}: not JSON-serialisable ({err})") from err


def build_statement(
    subjects: Resource | Sequence[Resource],
    run: RunInfo,
    *,
    external_parameters: Mapping[str, Any],
    internal_parameters: Mapping[str, Any] | None = None,
    dependencies: Sequence[Resource] = (),
    byproducts: Sequence[Resource] = (),
    build_type: str = BUILD_TYPE,
) -> dict[str, Any]:
    """An in-toto Statement v1 with a SLSA Provenance v1 predicate (validated).

    ``external_parameters`` are the inputs a user controls, e.g.
    ``{"dag_conf": {...}, "hyperparameters": {...}}``; ``dependencies`` the datasets, code,
    environment and base model; ``byproducts`` the gate reports.
    """
    subject_list = [subjects] if isinstance(subjects, Resource) else list(subjects)
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [s.descriptor(with_uri=False) for s in subject_list],
        "predicateType": SLSA_PROVENANCE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": build_type,
                "externalParameters": _json_safe(external_parameters, "externalParameters"),
                "internalParameters": _json_safe(internal_parameters or {}, "internalParameters"),
                "resolvedDependencies": [d.descriptor() for d in dependencies],
            },
            "runDetails": {
                "builder": {"id": run.builder_id},
                "metadata": {
                    "invocationId": run.invocation_id,
                    "startedOn": run.started_on,
                    "finishedOn": run.finished_on,
                },
                "byproducts": [b.descriptor() for b in byproducts],
            },
        },
    }
    validate_statement(statement)
    return statement


def statement_bytes(statement: Mapping[str, Any]) -> bytes:
    """Canonical JSON bytes (sorted keys, no spaces) for storing or signing."""
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------- code, environment


@dataclass(frozen=True)
class CodeDigest:
    """The code a run used: folder digests, their combined SHA-256 and the git commit."""

    sha256: str
    parts: Mapping[str, str]
    git_commit: str | None = None
    git_dirty: bool | None = None

    def resource(self, name: str = "code", uri: str | None = None) -> Resource:
        extra = {"gitCommit": self.git_commit} if self.git_commit else {}
        return Resource(name=name, sha256=self.sha256, uri=uri, other_digests=extra)


def _git(repo_dir: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo_dir), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("git %s in %s failed: %s", args[0], repo_dir, err)
        return None
    if done.returncode != 0:
        log.info("git %s in %s: %s", args[0], repo_dir, done.stderr.strip()[:200])
        return None
    return done.stdout


def code_digest(
    paths: Sequence[str | os.PathLike[str]], repo_dir: str | os.PathLike[str] | None = None
) -> CodeDigest:
    """Hash local code folders/files and read the git commit (``git rev-parse HEAD``), if any.

    The combined ``sha256`` is the SHA-256 of the lines ``<root digest>  <name>\\n`` sorted
    by name (``sha256sum`` format), where ``name`` is each path's final component.
    """
    if not paths:
        raise DataError("code_digest: no paths given")
    parts: dict[str, str] = {}
    for path in paths:
        manifest = hash_path(path)
        if manifest.name in parts:
            raise DataError(f"code_digest: two paths are named {manifest.name!r}")
        parts[manifest.name] = manifest.root_digest
    lines = "".join(f"{parts[name]}  {name}\n" for name in sorted(parts))
    first = Path(paths[0])
    if repo_dir is None:
        repo_dir = first if first.is_dir() else first.parent
    commit, dirty = _git_state(Path(repo_dir))
    return CodeDigest(
        sha256=hashlib.sha256(lines.encode()).hexdigest(),
        parts=parts,
        git_commit=commit,
        git_dirty=dirty,
    )


def _git_state(repo_dir: Path) -> tuple[str | None, bool | None]:
    """HEAD commit and whether tracked files differ from it; (None, None) without git."""
    head = (_git(repo_dir, "rev-parse", "HEAD") or "").strip()
    if not _HEX.fullmatch(head):
        return None, None
    status = _git(repo_dir, "status", "--porcelain", "--untracked-files=no")
    return head, None if status is None else bool(status.strip())


@dataclass(frozen=True)
class EnvironmentDigest:
    """Installed distributions as sorted ``name==version`` lines and their SHA-256."""

    packages: tuple[str, ...]

    @property
    def lock_text(self) -> str:
        return "".join(f"{line}\n" for line in self.packages)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.lock_text.encode()).hexdigest()

    def resource(self, name: str = "environment", uri: str | None = None) -> Resource:
        return Resource(name=name, sha256=self.sha256, uri=uri)


def environment_digest() -> EnvironmentDigest:
    """Digest of this interpreter's installed distributions (names normalised, PEP 503)."""
    lines = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            lines.add(f"{re.sub(r'[-_.]+', '-', name).lower()}=={dist.version}")
    return EnvironmentDigest(packages=tuple(sorted(lines)))


# ---------------------------------------------------------------------------- validation


def _field(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj or not isinstance(obj[key], kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise DataError(f"provenance statement: {where}{key}: missing or not a {names}")
    return obj[key]


def _check_descriptor(item: Any, where: str) -> None:
    if not isinstance(item, Mapping):
        raise DataError(f"provenance statement: {where}: must be an object")
    for key in ("name", "uri"):
        if key in item and not isinstance(item[key], str):
            raise DataError(f"provenance statement: {where}.{key}: must be a string")
    if "name" not in item and "uri" not in item:
        raise DataError(f"provenance statement: {where}: needs a name or a uri")
    digest = _field(item, "digest", Mapping, f"{where}.")
    sha = digest.get("sha256")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise DataError(f"provenance statement: {where}.digest.sha256: not 64 lowercase hex chars")
    for algo, value in digest.items():
        if not isinstance(value, str) or not _HEX.fullmatch(value):
            raise DataError(f"provenance statement: {where}.digest.{algo}: not lowercase hex")


def _check_list(obj: Mapping[str, Any], key: str, where: str, required: bool = False) -> None:
    if key not in obj and not required:
        return
    items = _field(obj, key, list, where)
    if required and not items:
        raise DataError(f"provenance statement: {where}{key}: must not be empty")
    for index, item in enumerate(items):
        _check_descriptor(item, f"{where}{key}[{index}]")


def _check_times(meta: Mapping[str, Any]) -> None:
    where = "predicate.runDetails.metadata."
    moments = {}
    for key in ("startedOn", "finishedOn"):
        if key not in meta:
            continue
        value = _field(meta, key, str, where)
        try:
            moments[key] = datetime.fromisoformat(value)
        except ValueError as err:
            raise DataError(f"provenance statement: {where}{key}: not an RFC 3339 time") from err
        if not value.endswith("Z"):
            raise DataError(f"provenance statement: {where}{key}: must be UTC (end in 'Z')")
    if len(moments) == 2 and moments["finishedOn"] < moments["startedOn"]:
        raise DataError(f"provenance statement: {where}finishedOn: is before startedOn")


def validate_statement(statement: Any) -> None:
    """Check an in-toto v1 / SLSA v1 statement; raise DataError naming the first bad field.

    Stricter than the specs (fail closed): every subject, dependency and byproduct needs a
    ``sha256`` digest, and times must be RFC 3339 in UTC (``Z``).
    """
    if not isinstance(statement, Mapping):
        raise DataError("provenance statement: must be a JSON object")
    if _field(statement, "_type", str, "") != STATEMENT_TYPE:
        raise DataError(f"provenance statement: _type: must be {STATEMENT_TYPE}")
    _check_list(statement, "subject", "", required=True)
    if _field(statement, "predicateType", str, "") != SLSA_PROVENANCE_TYPE:
        raise DataError(f"provenance statement: predicateType: must be {SLSA_PROVENANCE_TYPE}")
    predicate = _field(statement, "predicate", Mapping, "")
    build = _field(predicate, "buildDefinition", Mapping, "predicate.")
    where = "predicate.buildDefinition."
    if not _field(build, "buildType", str, where):
        raise DataError(f"provenance statement: {where}buildType: must not be empty")
    _field(build, "externalParameters", Mapping, where)
    if "internalParameters" in build:
        _field(build, "internalParameters", Mapping, where)
    _check_list(build, "resolvedDependencies", where)
    run = _field(predicate, "runDetails", Mapping, "predicate.")
    builder = _field(run, "builder", Mapping, "predicate.runDetails.")
    if not _field(builder, "id", str, "predicate.runDetails.builder."):
        raise DataError("provenance statement: predicate.runDetails.builder.id: must not be empty")
    if "metadata" in run:
        meta = _field(run, "metadata", Mapping, "predicate.runDetails.")
        if "invocationId" in meta:
            _field(meta, "invocationId", str, "predicate.runDetails.metadata.")
        _check_times(meta)
    _check_list(run, "byproducts", "predicate.runDetails.")
    _json_safe(statement, "statement")
