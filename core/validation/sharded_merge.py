"""The merge of the sharded data validation gate: one GateResult from every shard's partial.

:func:`merge_partials` reads the partials (from :func:`.sharded.validate_shard`) one by one
(an iterable: the operator reads each from the evidence store when asked), spilling each
one's digest arrays to local files (:mod:`..shards.buckets`), so the merge holds one partial
and one bucket range of digests at a time, never every shard's digests. It checks that they
cover one input exactly once, come from the same suite, configuration, reference and run, and that
every column has one dtype in every shard; then it merges: map expectations through GX's own
``_validate`` on the summed counts, aggregate expectations from the merged statistics, the
screens from their merged figures, and decides with the single-task gate's :func:`decide`.
An expectation or a condition that cannot be merged makes the verdict ``error`` (fail
closed), never ``pass``. With one shard it only re-stamps the single-task result.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from typing import Any

from mlsecops_provider.core.errors import DataError, MLSecOpsError
from mlsecops_provider.core.evidence import GateResult, Verdict
from mlsecops_provider.core.shards.buckets import DigestSpill
from mlsecops_provider.core.shards.split import ShardRef, check_cover
from mlsecops_provider.core.shards.stats import DIGEST_BYTES, KEY_ENV, cdf_arrays
from mlsecops_provider.core.validation import gate as g
from mlsecops_provider.core.validation import sharded_expectations as se
from mlsecops_provider.core.validation import sharded_screens as ss
from mlsecops_provider.core.validation.data_docs import render_html
from mlsecops_provider.core.validation.poisoning import PoisoningReport, ScreenResult
from mlsecops_provider.core.validation.sharded import PARTIAL_SCHEMA, config_digest
from mlsecops_provider.core.validation.suite import INDEX_KEY, Suite, load_suite

log = logging.getLogger(__name__)


def merge_partials(
    partials: Iterable[Mapping[str, Any]],
    suite: Suite | str | Mapping[str, Any],
    config: g.ValidationConfig | None = None,
    subjects: Mapping[str, str] | None = None,
    *,
    run: Mapping[str, str] | None = None,
    reference_sha256: str | None = None,
) -> tuple[GateResult, dict[str, Any]]:
    """One GateResult from the partials of every shard; ``error`` when they cannot merge."""
    config = config or g.ValidationConfig()
    checked = suite if isinstance(suite, Suite) else load_suite(suite)
    base = GateResult(
        g.GATE,
        Verdict.ERROR,
        subjects={**(subjects or {}), "suite": f"sha256:{checked.sha256}"},
        tool_versions={name: metadata.version(name) for name in g.TOOLS},
    )
    suite_info = {"name": checked.name, "sha256": checked.sha256}
    try:
        with DigestSpill() as spill:
            shared: dict[str, Any] = {}
            slim = [_spilled(part, spill, shared) for part in partials]
            ordered = _checked(slim, checked, config, run, reference_sha256)
            if ordered[0]["mode"] == "whole":
                return _restamp(base, ordered[0], checked, config)
            return _merge(base, ordered, checked, config)
    except MLSecOpsError as err:
        message = f"{type(err).__name__}: {err}"
        log.warning("sharded data validation cannot decide: %s", message)
        finding = {"kind": "shards", "severity": "critical", "reason": message}
        return base.finished(message=message, findings=[finding]), {
            "suite": suite_info,
            "error": message,
        }


_DIGEST_FIELDS = frozenset({"distinct", "multi", "others"})
_DIGEST = f"S{DIGEST_BYTES}"


def _spilled(part: Any, spill: DigestSpill, shared: dict[str, Any]) -> Mapping[str, Any]:
    """The partial with its digest arrays in ``spill`` and its drift figures compact (see
    :func:`_compact_drift`), copied where changed (``part`` as it was), after checking that
    it is one."""
    if not isinstance(part, Mapping) or part.get("schema") != PARTIAL_SCHEMA:
        raise DataError("not a validation partial")
    slim = dict(part)
    aggregates = part.get("aggregates")
    if isinstance(aggregates, Mapping):
        slim["aggregates"] = {
            index: {k: spill.add(v, _DIGEST) if k in _DIGEST_FIELDS else v for k, v in a.items()}
            if isinstance(a, Mapping)
            else a
            for index, a in aggregates.items()
        }
    screens = part.get("screens")
    if isinstance(screens, Mapping) and isinstance(screens.get("duplicates"), Mapping):
        duplicates = dict(screens["duplicates"])
        for name in ("in_ref", "not_in_ref"):
            if name in duplicates:
                duplicates[name] = spill.add(duplicates[name], "<u8")
        slim["screens"] = {**screens, "duplicates": duplicates}
    if isinstance(screens, Mapping) and isinstance(screens.get("drift"), Mapping):
        drift = _compact_drift(screens["drift"], shared)
        slim["screens"] = {**slim.get("screens", screens), "drift": drift}
    return slim


def _compact_drift(drift: Mapping[str, Any], shared: dict[str, Any]) -> Mapping[str, Any]:
    """A shard's CDF counts as arrays (a third of their base64 text), and the reference's
    (fixed by the reference, equal in every shard) held once: what the merge keeps of each
    partial stays small however many shards there are."""
    columns = drift.get("columns")
    if not isinstance(columns, Mapping):
        return drift
    compact: dict[str, Any] = {}
    for name, figures in columns.items():
        if isinstance(figures, Mapping) and isinstance(figures.get("cdf"), Mapping):
            figures = {**figures, "cdf": cdf_arrays(figures["cdf"])}
            reference = figures.get("ref_cdf")
            if isinstance(reference, Mapping):
                first = shared.setdefault(f"ref_cdf/{name}", reference)
                figures["ref_cdf"] = first if first == reference else reference
        compact[name] = figures
    return {**drift, "columns": compact}


def _checked(
    partials: Sequence[Mapping[str, Any]],
    suite: Suite,
    config: g.ValidationConfig,
    run: Mapping[str, str] | None,
    reference_sha256: str | None,
) -> list[Mapping[str, Any]]:
    """The partials in shard order, if they belong together; else :class:`DataError`."""
    shards = check_cover([ShardRef.from_dict(p["shard"]) for p in partials])
    by_index = {int(p["shard"]["index"]): p for p in partials}
    ordered = [by_index[s.index] for s in shards]
    expected = {
        "suite_sha256": suite.sha256,
        "config_sha256": config_digest(config),
        "reference_sha256": reference_sha256,
        "run": dict(run) if run is not None else None,
    }
    for part, shard in zip(ordered, shards, strict=True):
        mode = "whole" if shard.count == 1 else "shard"  # a shard cannot claim the whole
        if part.get("mode") != mode:
            raise DataError(
                f"{shard.label}: partial says mode {str(part.get('mode'))[:20]!r}, "
                f"expected {mode!r} for {shard.count} shard(s)"
            )
        for name, value in expected.items():
            if (name != "run" or value is not None) and part.get(name) != value:
                raise DataError(
                    f"{shard.label}: partial has another {name.removesuffix('_sha256')} "
                    f"({str(part.get(name))[:80]}, expected {str(value)[:80]})"
                )
    _check_digest_keys(ordered, shards)
    reasons = [p["quarantine_error"] for p in ordered if p.get("quarantine_error")]
    if reasons:
        raise DataError(reasons[0])
    return ordered


def _check_digest_keys(ordered: Sequence[Mapping[str, Any]], shards: Sequence[ShardRef]) -> None:
    """Digests merge only under one key: a worker with another ``MLSECOPS_SHARD_DIGEST_KEY``
    would make equal values look distinct (duplicates across shards unseen)."""
    keyed = [(p, s) for p, s in zip(ordered, shards, strict=True) if p.get("mode") == "shard"]
    if not keyed:
        return
    first = keyed[0][0].get("digest_key")
    for part, shard in keyed:
        if not isinstance(part.get("digest_key"), Mapping) or part["digest_key"] != first:
            raise DataError(
                f"{shard.label}: digested under another key than {keyed[0][1].label} "
                f"({KEY_ENV} differs between the workers?); the digests do not compare"
            )


def _restamp(
    base: GateResult, part: Mapping[str, Any], suite: Suite, config: g.ValidationConfig
) -> tuple[GateResult, dict[str, Any]]:
    stored = part["result"]
    result = base.finished(
        verdict=Verdict(stored["verdict"]),
        message=stored["message"],
        metrics=dict(stored["metrics"]),
        findings=list(stored["findings"]),
    )
    details = dict(part["details"])
    if config.render_html and "expectations" in details:
        report = _report(details.get("screens"))
        details["data_docs_html"] = render_html(result, suite.name, details["expectations"], report)
    return result, details


def _report(screens: Mapping[str, Any] | None) -> PoisoningReport | None:
    if not screens:
        return None
    return PoisoningReport(tuple(ScreenResult(**s) for s in screens.values()))


def _check_dtypes(parts: Sequence[Mapping[str, Any]]) -> None:
    first = parts[0]
    for part in parts[1:]:
        label = ShardRef.from_dict(part["shard"]).label
        if part["columns"] != first["columns"]:
            raise DataError(f"shard 1/{len(parts)} and {label} have different columns")
        for column, dtype in part["dtypes"].items():
            if first["dtypes"][column] != dtype:
                raise DataError(
                    f"column {column!r} parses as {first['dtypes'][column]} in shard "
                    f"1/{len(parts)} but as {dtype} in {label}: the shards cannot be merged"
                )


def _merge(
    base: GateResult, parts: Sequence[Mapping[str, Any]], suite: Suite, config: g.ValidationConfig
) -> tuple[GateResult, dict[str, Any]]:
    _check_dtypes(parts)
    unsupported = parts[0]["unsupported"]
    if unsupported:
        named = ", ".join(f"expectations[{u['index']}] {u['type']}" for u in unsupported)
        raise DataError(f"{named} {se.NOT_MERGEABLE} (run it with one shard)")
    rows = sum(int(p["rows"]) for p in parts)
    columns = list(parts[0]["columns"])
    items = []
    for expectation in suite.configurations:
        index = str(expectation.meta[INDEX_KEY])
        if se.kind_of(expectation.type) == "map":
            items.append(se.merge_map(expectation, [p["map"][index] for p in parts]))
        else:
            pieces = [p["aggregates"][index] for p in parts]
            items.append(se.merge_aggregate(expectation, pieces, rows, columns))
    gx_result = _suite_result(items)
    sensitive = set().union(*(set(p["sensitive"]) for p in parts))
    g.redact(gx_result, sensitive, config.keep_unexpected_values)
    screened = sum(int(p.get("screened_rows", p["rows"])) for p in parts)
    report = _merge_screens(parts, config, screened, columns) if config.screens.enabled else None
    expectation_rows = g.expectation_rows(gx_result)
    verdict, message = g.decide(expectation_rows, report, config.screens.warn_only)
    summary = g.summarize(gx_result, expectation_rows)
    shape = _Shape(rows, columns)
    result = base.finished(
        verdict=verdict,
        message=message,
        metrics={**g._metrics(shape, summary, expectation_rows, report), "shards": len(parts)},
        findings=g._findings(expectation_rows, report, config.screens.warn_only),
    )
    details: dict[str, Any] = {
        "suite": {"name": suite.name, "sha256": suite.sha256},
        "summary": summary,
        "expectations": expectation_rows,
        "screens": report.to_dict() if report else None,
        "validation_result": gx_result,
        "shards": {"count": len(parts), "rows": [int(p["rows"]) for p in parts]},
        **_quarantined(parts),
    }
    if config.render_html:
        details["data_docs_html"] = render_html(result, suite.name, expectation_rows, report)
    log.info("sharded data validation of %s over %d shards: %s (%s)", suite.name, len(parts),
             verdict.value, message)  # fmt: skip
    return result, details


def _quarantined(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    if not any("quarantined_rows" in p for p in parts):
        return {}
    held = sum(int(p["quarantined_rows"]) for p in parts)
    return {
        "quarantine": {"kept_rows": sum(int(p["rows"]) for p in parts), "quarantined_rows": held}
    }


class _Shape:
    """What :func:`gate._metrics` reads of a frame: its length and columns."""

    def __init__(self, rows: int, columns: list[str]) -> None:
        self.rows, self.columns = rows, columns

    def __len__(self) -> int:
        return self.rows


def _suite_result(items: list[dict[str, Any]]) -> dict[str, Any]:
    successful = sum(bool(i.get("success")) for i in items)
    return {
        "success": successful == len(items),
        "statistics": {
            "evaluated_expectations": len(items),
            "successful_expectations": successful,
            "unsuccessful_expectations": len(items) - successful,
            "success_percent": 100.0 * successful / len(items) if items else None,
        },
        "results": items,
    }


def _merge_screens(
    parts: Sequence[Mapping[str, Any]], config: g.ValidationConfig, rows: int, columns: list[str]
) -> PoisoningReport:
    screens = config.screens
    pieces = {name: [p["screens"][name] for p in parts] for name in parts[0]["screens"]}
    return PoisoningReport(
        (
            ss.merge_drift(pieces["drift"], screens, columns),
            ss.merge_label(pieces["label_shift"], screens),
            ss.merge_outliers(pieces["outliers"], screens, rows),
            ss.merge_duplicates(pieces["duplicates"], screens),
        )
    )
