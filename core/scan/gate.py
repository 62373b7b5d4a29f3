"""The ``model_scan`` gate: our content scanner plus modelscan, merged, fail closed.

:mod:`content_scan` checks every file by its bytes. modelscan runs on the same path; its
issues become findings, and whatever it skipped or could not parse must have been validated by
our scanner, or it is an ``error`` finding. The verdict follows the policy's
``fail_on_severity``; anything that could not be checked makes the gate ``error``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.evidence import GateResult, Verdict, utcnow
from mlsecops_provider.core.manifest import DEFAULT_IGNORE, Manifest
from mlsecops_provider.core.scan.content import (
    ContentScanner,
    ScanOutcome,
    scan_bytes,
    scan_content,
)
from mlsecops_provider.core.scan.formats import ERROR, SEVERITIES, Finding, severity_rank
from mlsecops_provider.core.scan.mlflow_dir import DEFAULT_FLAVORS, DEFAULT_LOADERS, mlflow_findings
from mlsecops_provider.core.scan.pickle.allowlist import Allowlist

log = logging.getLogger(__name__)
GATE = "model_scan"
SCANNER_VERSION = "2"


@dataclass(frozen=True)
class ModelScanConfig:
    """Policy section ``gates.model_scan``.

    :param fail_on_severity: lowest finding severity that fails the gate (info ... critical).
    :param allowed_globals: extra pickle globals to allow (``pkg.mod.Name`` or ``pkg.*``).
    :param use_modelscan: also run modelscan and merge its results.
    :param max_decompressed_mb: refuse compressed members that inflate beyond this.
    :param max_nesting: deepest container nesting (zip in zip, gzip in zip, ...) to follow.
    :param mlflow_flavors: MLflow flavours a model directory may name.
    :param mlflow_loader_modules: ``python_function.loader_module`` values that are not custom
        code (MLflow's own loaders).
    :param allowed_code_digests: custom code of MLflow models allowed by digest (the finding
        names the digest of the model's custom code).
    :param use_fickling: also ask fickling about top-level pickles (only its overtly
        malicious verdicts count; see :mod:`fickling_opinion`).
    """

    fail_on_severity: str = "high"
    allowed_globals: tuple[str, ...] = ()
    use_modelscan: bool = True
    max_decompressed_mb: int = 4096
    max_nesting: int = 4
    mlflow_flavors: tuple[str, ...] = DEFAULT_FLAVORS
    mlflow_loader_modules: tuple[str, ...] = DEFAULT_LOADERS
    allowed_code_digests: tuple[str, ...] = ()
    use_fickling: bool = False

    def __post_init__(self) -> None:
        if self.fail_on_severity not in SEVERITIES:
            raise ValueError(f"fail_on_severity must be one of {SEVERITIES}")
        if self.max_decompressed_mb <= 0 or self.max_nesting <= 0:
            raise ValueError("max_decompressed_mb and max_nesting must be positive")
        Allowlist(tuple(self.allowed_globals))
        for digest in self.allowed_code_digests:
            if not (isinstance(digest, str) and len(digest) == 64 and digest.isalnum()):
                raise ValueError(f"allowed_code_digests: {digest!r} is not a SHA-256 hex digest")
        object.__setattr__(self, "allowed_code_digests", tuple(self.allowed_code_digests))
        object.__setattr__(self, "mlflow_flavors", tuple(self.mlflow_flavors))
        object.__setattr__(self, "mlflow_loader_modules", tuple(self.mlflow_loader_modules))

    @property
    def allowlist(self) -> Allowlist:
        return Allowlist(tuple(self.allowed_globals))


# --- modelscan ------------------------------------------------------------------------------
def modelscan_settings() -> dict[str, Any]:
    """modelscan's defaults without its ``.npy`` scanner.

    modelscan 0.8.8's ``NumpyUnsafeOpScan`` calls ``numpy.lib.format._check_version``, which
    numpy 2.4 removed: it logs an ``[error]`` line for every ``.npy`` (also inside ``.npz``)
    and reports a scan error. With it disabled modelscan reports those files as skipped,
    and :func:`merge_modelscan` requires our scanner to have validated each of them (header,
    size, and the pickle of object arrays), else the gate is ``error``.
    """
    import copy

    from modelscan.settings import DEFAULT_SETTINGS

    settings = copy.deepcopy(DEFAULT_SETTINGS)
    settings["scanners"]["modelscan.scanners.NumpyUnsafeOpScan"]["enabled"] = False
    return settings


def run_modelscan(path: Path) -> tuple[dict[str, Any] | None, str, str | None]:
    """Run modelscan; return (its report or None, its version, why it failed or None)."""
    try:
        from modelscan._version import __version__
        from modelscan.modelscan import ModelScan
    except ImportError as err:
        return None, "not installed", f"modelscan cannot be imported ({err})"
    try:
        return ModelScan(settings=modelscan_settings()).scan(str(path)), __version__, None
    except Exception as err:  # modelscan is a third-party tool: any crash means "not checked"
        return None, __version__, f"modelscan failed ({type(err).__name__}: {err})"


def merge_modelscan(report: dict[str, Any], ours: ScanOutcome) -> tuple[list[Finding], int]:
    """modelscan's issues as findings; its skips and errors must be covered by our scanner.

    Returns the findings and how many skipped/errored files our scanner had validated.
    """
    found = []
    for issue in report.get("issues", []):
        severity = str(issue.get("severity", "")).lower()
        source, reason = str(issue.get("source", "?")), f"modelscan: {issue.get('description', '')}"
        if _vetted_getattr(issue, ours):  # getattr(zoneinfo.ZoneInfo, "_unpickle") only
            severity, reason = "info", f"{reason} (our scanner vetted every getattr there)"
        found.append(Finding(
            source, severity if severity in SEVERITIES else "high", reason,
            global_name=f"{issue.get('module')}.{issue.get('operator')}", scanner="modelscan",
        ))  # fmt: skip
    leftovers = [
        (e.get("source"), f"modelscan error {e.get('category')}: {e.get('description')}")
        for e in report.get("errors", [])
    ] + [
        (s.get("source"), f"modelscan skipped it ({s.get('category')}: {s.get('description')})")
        for s in report.get("summary", {}).get("skipped", {}).get("skipped_files", [])
    ]
    errored = {f.file for f in ours.findings if f.severity == ERROR}
    covered = 0
    for source, why in leftovers:
        if source in ours.validated and source not in errored:
            covered += 1
        elif source not in errored:
            reason = f"{why}; our scanner did not validate it either"
            found.append(Finding(source or "<modelscan>", ERROR, reason, scanner="modelscan"))
    return found, covered


def _vetted_getattr(issue: dict[str, Any], ours: ScanOutcome) -> bool:
    """modelscan flags every ``builtins.getattr``; ours allows only the method reconstructors
    pickle writes (and flags any other use itself, so downgrading loses no verdict)."""
    module, operator = str(issue.get("module")), str(issue.get("operator"))
    source = str(issue.get("source", "")).split(":")[0]
    return (
        module in ("builtins", "__builtin__")
        and operator == "getattr"
        and (source in ours.vetted_getattr)
    )


# --- the gate -------------------------------------------------------------------------------
def decide(findings: list[Finding], fail_on: str) -> Verdict:
    """fail at or above ``fail_on``; else error if anything could not be checked; else warn/pass."""
    threshold = severity_rank(fail_on)
    ranks = [severity_rank(f.severity) for f in findings if f.severity != ERROR]
    if any(rank >= threshold for rank in ranks):
        return Verdict.FAIL
    if any(f.severity == ERROR for f in findings):
        return Verdict.ERROR
    return Verdict.WARN if any(rank > 0 for rank in ranks) else Verdict.PASS


def _scanner(config: ModelScanConfig) -> ContentScanner:
    return ContentScanner(config.allowlist, config.max_decompressed_mb << 20, config.max_nesting)


def scan_model(
    path: str | Path, config: ModelScanConfig | None = None, digest: bool = True
) -> GateResult:
    """Scan a local model file or directory and return the ``model_scan`` GateResult."""
    config, root, started = config or ModelScanConfig(), Path(path).resolve(), utcnow()
    if not root.exists():
        raise DataError(f"{root}: no such file or directory to scan")
    scanner = _scanner(config)
    ours = scan_content(root, scanner, digest)
    check_mlflow(ours, root, config)
    if config.use_fickling:
        from mlsecops_provider.core.scan.fickling_opinion import fickling_findings

        ours.findings += fickling_findings(scanner.paths, ours.formats)
    return build_result(ours, root, config, started, _subjects(root, ours))


def check_mlflow(ours: ScanOutcome, root: Path, config: ModelScanConfig) -> None:
    """Add the MLflow findings of every ``MLmodel`` under ``root``; waive the findings of
    custom code the policy allowed by digest (they become ``info``)."""
    import hashlib

    def path(source: str) -> Path:
        return root if root.is_file() else root / source

    files = [
        s for s in ours.formats
        if ":" not in s and "#" not in s and path(s).is_file() and not path(s).is_symlink()
    ]  # fmt: skip
    texts = {s: path(s).read_bytes()[: 1 << 20] for s in files if s.rsplit("/", 1)[-1] == "MLmodel"}
    if not texts:
        return
    digests = ours.digests or {s: hashlib.sha256(path(s).read_bytes()).hexdigest() for s in files}
    found, waived = mlflow_findings(
        texts, digests, config.allowlist, config.mlflow_flavors,
        config.mlflow_loader_modules, config.allowed_code_digests,
    )  # fmt: skip
    kept = [f for f in ours.findings if f.file.split(":")[0] not in waived]
    kept += [
        replace(f, severity="info", reason=f"allowed by digest: {f.reason}")
        for f in ours.findings
        if f.file.split(":")[0] in waived and f.severity != ERROR
    ]
    ours.findings = kept + found


def scan_model_bytes(
    data: bytes, name: str, config: ModelScanConfig | None = None
) -> tuple[GateResult, ScanOutcome]:
    """Scan bytes held in memory; modelscan reads a temporary copy of exactly these bytes."""
    import tempfile

    config, started, name = config or ModelScanConfig(), utcnow(), Path(name).name or "model"
    ours = scan_bytes(data, name, _scanner(config))
    subjects = {"model": ours.digests[name], "path": name}
    with tempfile.TemporaryDirectory(prefix="mlsecops-scan-") as tmp:
        copy = Path(tmp, name)
        copy.write_bytes(data)
        return build_result(ours, copy, config, started, subjects), ours


def build_result(
    ours: ScanOutcome, path: Path, config: ModelScanConfig, started: str, subjects: dict[str, str]
) -> GateResult:
    """Add modelscan's view of ``path`` to our outcome and decide the verdict."""
    findings, versions, covered = list(ours.findings), {"mlsecops-model-scan": SCANNER_VERSION}, 0
    if config.use_modelscan:
        report, versions["modelscan"], failure = run_modelscan(path)
        if failure:
            findings.append(Finding(path.name, ERROR, failure, scanner="modelscan"))
        elif report is not None:
            merged, covered = merge_modelscan(report, ours)
            findings += merged
    verdict = decide(findings, config.fail_on_severity)
    counts = {s: sum(f.severity == s for f in findings) for s in (*SEVERITIES, ERROR)}
    metrics: dict[str, Any] = {
        "files": len(ours.digests), "bytes": ours.bytes_total, "findings": len(findings),
        "modelscan_gaps_covered": covered, **{f"findings_{k}": v for k, v in counts.items()},
        "formats": dict(ours.formats),
    }  # fmt: skip
    return GateResult(
        gate=GATE, verdict=verdict, subjects=subjects, metrics=metrics,
        findings=[f.to_dict() for f in findings], tool_versions=versions, started_at=started,
        message=_message(verdict, counts),
    ).finished()  # fmt: skip


def _subjects(root: Path, ours: ScanOutcome) -> dict[str, str]:
    """The model's digest as :mod:`hashing` computes it (model-signing's root digest)."""
    if not ours.digests:
        return {"path": str(root)}
    kind = "file" if root.is_file() else "directory"
    files = {s: d for s, d in ours.digests.items() if kind == "file" or not _ignored(s)}
    manifest = Manifest(kind=kind, name=root.name, files=files)
    return {"model": manifest.root_digest, "path": str(root)}


def _ignored(source: str) -> bool:
    return any(source == top or source.startswith(top + "/") for top in DEFAULT_IGNORE)


def _message(verdict: Verdict, counts: dict[str, int]) -> str:
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return f"model scan {verdict.value}: " + (shown or "no findings")


def scan_uri(
    uri: str, config: ModelScanConfig | None = None, s3_client_factory: Any = None
) -> GateResult:
    """Scan a model at a ``file://`` or ``s3://`` URI (an object or a prefix)."""
    import tempfile
    from urllib.parse import unquote, urlparse

    from mlsecops_provider.core.errors import StorageError
    from mlsecops_provider.core.storage import normalise_uri, storage_for

    uri = normalise_uri(uri)
    if urlparse(uri).scheme == "file":
        result = scan_model(unquote(urlparse(uri).path), config)
        return replace(result, subjects={**result.subjects, "path": uri})
    storage = storage_for(uri, s3_client_factory)
    prefix = uri.rstrip("/") + "/"
    keys = [uri] if storage.exists(uri) else storage.list(prefix)
    if not keys:
        raise StorageError(f"{uri}: no object or prefix to scan")
    with tempfile.TemporaryDirectory(prefix="mlsecops-scan-") as tmp:
        for key in keys:
            relative = key.rsplit("/", 1)[-1] if key == uri else key[len(prefix) :]
            target = Path(tmp, relative).resolve()
            if not relative or not target.is_relative_to(Path(tmp).resolve()):
                raise StorageError(f"{key}: object key escapes the download folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(storage.read_bytes(key))
        local = Path(tmp, keys[0].rsplit("/", 1)[-1]) if keys == [uri] else Path(tmp)
        result = scan_model(local, config)
    return replace(result, subjects={**result.subjects, "path": uri})
