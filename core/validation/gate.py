"""The data validation gate: a GX 1.x expectation suite plus the poisoning screens.

The suite (:mod:`.suite`) is checked when loaded. An expectation's ``severity`` decides what
its failure does: ``critical`` fails the gate, ``warning`` gives ``warn``, ``info`` is
recorded only. A missing column is a
failed expectation, not a crash. No raw value of a column that may hold PII (text, PII
names, PII-like digits) is stored: ``observed_value``, ``details``, sampled rows and
exception messages are redacted (:mod:`.redaction`); other columns keep their aggregates,
and their sampled rows only with ``keep_unexpected_values``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import PolicyError
from mlsecops_provider.core.evidence import GateResult, Verdict
from mlsecops_provider.core.policy import Policy, section_config
from mlsecops_provider.core.validation.data_docs import render_html
from mlsecops_provider.core.validation.poisoning import (
    PoisoningConfig,
    PoisoningReport,
    screen_dataset,
)
from mlsecops_provider.core.validation.redaction import redact_result, sensitive_columns
from mlsecops_provider.core.validation.suite import (
    INDEX_KEY,
    SEVERITIES,
    Suite,
    load_suite,
    run_suite,
    short,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

GATE = "data_validation"
# Sampled row values (may be PII): dropped from stored results unless asked for.
REDACTED_PREFIXES = ("partial_unexpected", "unexpected_list", "unexpected_index", "unexpected_rows")
MAX_FAILED_IN_SUMMARY = 10
TOOLS = ("great_expectations", "pandas", "numpy", "scipy")


@dataclass(frozen=True)
class ValidationConfig:
    """Policy section ``gates.data_validation`` (``screens`` is a :class:`PoisoningConfig`)."""

    keep_unexpected_values: bool = False
    render_html: bool = True
    screens: PoisoningConfig = field(default_factory=PoisoningConfig)

    @classmethod
    def from_policy(cls, policy: Policy) -> ValidationConfig:
        where = f"{policy.source}: gates.{GATE}"
        section = dict(policy.section(GATE))
        screens = section.pop("screens", None) or {}
        if not isinstance(screens, Mapping):
            raise PolicyError(f"{where}.screens: must be a mapping")
        base = section_config(cls, section, where)
        return replace(base, screens=section_config(PoisoningConfig, screens, f"{where}.screens"))


def redact(
    gx_result: dict[str, Any], sensitive: Iterable[str] | None = None, keep_values: bool = False
) -> dict[str, Any]:
    """No raw value of a column that may hold PII (``None``: any column) in the result, in
    place; sampled rows of other columns only with ``keep_values`` (see .redaction)."""
    return redact_result(gx_result, sensitive, keep_values)


def expectation_rows(gx_result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One safe row per expectation (suite order): type, column, severity, status, observed."""
    rows = []
    for item in gx_result.get("results", []):
        config = item.get("expectation_config") or {}
        error = _exception_message(item.get("exception_info") or {})
        status = "pass" if item.get("success") else ("error" if error else "fail")
        rows.append(
            {
                "index": (config.get("meta") or {}).get(INDEX_KEY),
                "type": config.get("type"),
                "column": _column_of(config.get("kwargs") or {}),
                "severity": str(config.get("severity") or "critical"),
                "status": status,
                "observed": short(f"error: {error}") if error else _observed(item, config),
            }
        )
    return sorted(rows, key=lambda r: (r["index"] is None, r["index"] or 0))


def _exception_message(info: Mapping[str, Any]) -> str | None:
    """GX puts one exception at the top level or one per failed metric."""
    candidates = [info, *(v for v in info.values() if isinstance(v, Mapping))]
    return next(
        (str(c["exception_message"]) for c in candidates if c.get("raised_exception")), None
    )


def _column_of(kwargs: Mapping[str, Any]) -> str | None:
    for key in ("column", "column_A"):
        if key in kwargs:
            extra = f",{kwargs['column_B']}" if "column_B" in kwargs else ""
            return f"{kwargs[key]}{extra}"
    if "column_list" in kwargs:
        return ",".join(map(str, kwargs["column_list"]))
    return None


def _observed(item: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """A short description of what was seen: counts and aggregates, never sampled rows."""
    result = item.get("result") or {}
    mismatched = (result.get("details") or {}).get("mismatched")
    if isinstance(mismatched, Mapping):
        return short("; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in mismatched.items()))
    if "unexpected_count" in result:
        pct = result.get("unexpected_percent") or 0.0
        counted = f"{result['unexpected_count']} of {result.get('element_count')} unexpected"
        return f"{counted} ({pct:.3g}%)"
    value = result.get("observed_value")
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        if str(config.get("type")).startswith("expect_table_"):
            return short(", ".join(map(str, value)))
        return f"{len(value)} distinct values"
    return short(str(value)) if value is not None else ""


def summarize(gx_result: Mapping[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The compact summary: success, statistics and up to ten failed expectations."""
    failed = _failed(rows)
    stats = gx_result.get("statistics") or {}
    return {
        "success": bool(gx_result.get("success")),
        "statistics": {
            "evaluated": int(stats.get("evaluated_expectations", 0)),
            "successful": int(stats.get("successful_expectations", 0)),
            "unsuccessful": int(stats.get("unsuccessful_expectations", 0)),
            "success_percent": round(float(stats.get("success_percent") or 0.0), 3),
        },
        "failed_total": len(failed),
        "failed_expectations": failed[:MAX_FAILED_IN_SUMMARY],
    }


def _failed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    failed = [r for r in rows if r["status"] != "pass"]
    return sorted(failed, key=lambda r: rank.get(r["severity"], 0))


def validate_dataset(
    frame: pd.DataFrame,
    suite: Suite | str | Mapping[str, Any],
    reference: pd.DataFrame | None = None,
    config: ValidationConfig | None = None,
    subjects: Mapping[str, str] | None = None,
    screens: PoisoningReport | None = None,
) -> tuple[GateResult, dict[str, Any]]:
    """Validate a batch with a suite and the screens: ``(GateResult, JSON details)``.

    Pass ``screens`` (from :func:`screen_dataset`, e.g. with ``quarantine=True``) to reuse
    screens already run; otherwise they run here when ``config.screens.enabled``.
    """
    config = config or ValidationConfig()
    checked = suite if isinstance(suite, Suite) else load_suite(suite)
    base = GateResult(
        GATE,
        Verdict.FAIL,
        subjects={**(subjects or {}), "suite": f"sha256:{checked.sha256}"},
        tool_versions={name: metadata.version(name) for name in TOOLS},
    )
    if len(frame) == 0:
        finding = {"kind": "dataset", "reason": "dataset is empty (0 rows)"}
        result = base.finished(message="dataset is empty (0 rows)", findings=[finding])
        return result, {"suite": {"name": checked.name, "sha256": checked.sha256}}
    gx_result = run_suite(frame, checked)
    redact(gx_result, sensitive_columns(frame), config.keep_unexpected_values)
    rows = expectation_rows(gx_result)
    if screens is None and config.screens.enabled:
        screens = screen_dataset(frame, reference, config.screens)
    verdict, message = decide(rows, screens, config.screens.warn_only)
    log.info("data validation of suite %s: %s (%s)", checked.name, verdict.value, message)
    summary = summarize(gx_result, rows)
    result = base.finished(
        verdict=verdict,
        message=message,
        metrics=_metrics(frame, summary, rows, screens),
        findings=_findings(rows, screens, config.screens.warn_only),
    )
    details: dict[str, Any] = {
        "suite": {"name": checked.name, "sha256": checked.sha256},
        "summary": summary,
        "expectations": rows,
        "screens": screens.to_dict() if screens else None,
        "validation_result": gx_result,
    }
    if config.render_html:
        details["data_docs_html"] = render_html(result, checked.name, rows, screens)
    return result, details


def decide(
    rows: list[dict[str, Any]], report: PoisoningReport | None, warn_only: tuple[str, ...] = ()
) -> tuple[Verdict, str]:
    """Critical failure or blocking screen: fail; warnings or warn-only screens: warn."""
    failed = _failed(rows)
    counts = {s: sum(r["severity"] == s for r in failed) for s in SEVERITIES}
    screens = [s.name for s in report.failed()] if report else []
    blocking = [s for s in screens if s not in warn_only]
    parts = [f"{n} {s} expectation(s) failed" for s, n in counts.items() if n]
    if screens:
        parts.append(f"screens failed: {', '.join(screens)}")
    if counts["critical"] or blocking:
        return Verdict.FAIL, "; ".join(parts) + _skipped_note(report)
    if counts["warning"] or screens:
        return Verdict.WARN, "; ".join(parts) + _skipped_note(report)
    ran = [s for s in report.screens if s.status != "skipped"] if report else []
    screened = f" and {len(ran)} screens" if report else ""
    return Verdict.PASS, f"all {len(rows)} expectations{screened} passed" + (
        f" ({counts['info']} info-only failure(s))" if counts["info"] else ""
    ) + _skipped_note(report)


def _skipped_note(report: PoisoningReport | None) -> str:
    """Which screens did not run and why (e.g. no label column given)."""
    by_reason: dict[str, list[str]] = {}
    for screen in report.screens if report else ():
        if screen.status == "skipped":
            by_reason.setdefault(screen.reason, []).append(screen.name)
    return "".join(f"; not run: {', '.join(names)} ({why})" for why, names in by_reason.items())


def _metrics(
    frame: pd.DataFrame, summary: Mapping[str, Any], rows: list[dict[str, Any]], report: Any
) -> dict[str, Any]:
    """Flat scalar metrics (they go to XCom); the nested figures stay in the details."""
    metrics: dict[str, Any] = {"rows": len(frame), "columns": len(frame.columns)}
    metrics.update({f"expectations_{k}": v for k, v in summary["statistics"].items()})
    failed = _failed(rows)
    metrics.update({f"{s}_failures": sum(r["severity"] == s for r in failed) for s in SEVERITIES})
    for screen in report.screens if report else ():
        metrics[f"screen_{screen.name}"] = screen.status
        scalars = {k: v for k, v in screen.metrics.items() if isinstance(v, (int, float, str))}
        metrics.update({f"{screen.name}_{k}": v for k, v in scalars.items()})
    return metrics


def _findings(
    rows: list[dict[str, Any]], report: PoisoningReport | None, warn_only: tuple[str, ...]
) -> list[dict[str, Any]]:
    blocking = [{"kind": "expectation", **r} for r in _failed(rows) if r["severity"] == "critical"]
    rest = [{"kind": "expectation", **r} for r in _failed(rows) if r["severity"] != "critical"]
    for screen in report.failed() if report else []:
        severity = "warning" if screen.name in warn_only else "critical"
        target = rest if severity == "warning" else blocking
        target.extend({"kind": "screen", "severity": severity, **f} for f in screen.findings)
    return blocking + rest
