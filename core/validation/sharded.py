"""The data validation gate over shards, per shard: one JSON-able *partial* per shard.

:func:`validate_shard` runs in a mapped task on one shard and returns the counts of the
row-wise map expectations (GX on the shard, ``mostly`` removed), the statistics of the
aggregate expectations and of the screens (see :mod:`.sharded_expectations`,
:mod:`.sharded_screens`), the shard's columns and dtypes. No raw value of a column that may
hold PII is in it (digests instead); no timestamp either, so re-running a map task writes the
same bytes. :mod:`.sharded_merge` turns the partials of every shard into one GateResult.

With exactly one shard the map task runs the single-task gate itself (every expectation and
screen, exactly as :func:`validate_dataset`), and the merge only re-stamps its result.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any, cast

from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.shards.split import ShardRef
from mlsecops_provider.core.shards.stats import KEY_ENV, digest_key, key_id
from mlsecops_provider.core.validation import gate as g
from mlsecops_provider.core.validation import sharded_expectations as se
from mlsecops_provider.core.validation import sharded_screens as ss
from mlsecops_provider.core.validation.poisoning import PoisoningReport
from mlsecops_provider.core.validation.redaction import sensitive_columns
from mlsecops_provider.core.validation.suite import INDEX_KEY, Suite, load_suite, run_suite

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

PARTIAL_SCHEMA = "mlsecops.validation-partial/v1"


def config_digest(config: g.ValidationConfig) -> str:
    """What must be equal in every partial of one merge (rendering aside)."""
    data = asdict(replace(config, render_html=False))
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def partial_bytes(partial: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a partial (same partial, same bytes, same digest)."""
    return json.dumps(partial, sort_keys=True, separators=(",", ":"), default=str).encode()


def validate_shard(
    frame: pd.DataFrame,
    shard: ShardRef | Mapping[str, Any],
    suite: Suite | str | Mapping[str, Any],
    reference: pd.DataFrame | None = None,
    config: g.ValidationConfig | None = None,
    *,
    reference_sha256: str | None = None,
    run: Mapping[str, str] | None = None,
    quarantine: bool = False,
    screens: PoisoningReport | None = None,
) -> dict[str, Any]:
    """The partial of one shard (see the module docstring)."""
    config = config or g.ValidationConfig()
    checked = suite if isinstance(suite, Suite) else load_suite(suite)
    ref = ShardRef.from_dict(shard)
    head = {
        "schema": PARTIAL_SCHEMA,
        "shard": ref.to_dict(),
        "suite_sha256": checked.sha256,
        "config_sha256": config_digest(config),
        "reference_sha256": reference_sha256,
        "run": dict(run or {}),
        "quarantine": bool(quarantine),
    }
    if ref.count == 1:
        whole = _whole(frame, checked, reference, config, screens)
        return {**head, "mode": "whole", "columns": [str(c) for c in frame.columns], **whole}
    if len(frame) != ref.rows:
        raise DataError(f"{ref.label}: {len(frame)} rows read, the shard says {ref.rows}")
    key = digest_key(ref.source_sha256)
    if not key_id(key)["secret"]:
        log.warning(
            "%s: value digests and row hashes keyed by the input's digest alone: set %s on "
            "every worker, or a reader of the partials can confirm a guessed value",
            ref.label,
            KEY_ENV,
        )
    screened, extra = frame, cast(dict[str, Any], {})
    if quarantine:  # the screens judge every row, the suite the rows that remain
        mask, why = quarantine_mask(frame, reference, config)
        if mask is None:
            extra = {"quarantine_error": why}
        else:
            frame = frame[~mask]
            extra = {"screened_rows": len(screened), "quarantined_rows": int(mask.sum())}
    sensitive = sensitive_columns(frame)
    partial: dict[str, Any] = {
        **head,
        **extra,
        "mode": "shard",
        "digest_key": key_id(key),
        "rows": len(frame),
        "columns": [str(c) for c in frame.columns],
        "dtypes": {str(c): str(t) for c, t in frame.dtypes.items()},
        "sensitive": sorted(sensitive),
        "map": _map_counts(frame, checked, sensitive),
        "aggregates": {},
        "unsupported": [],
    }
    for config_ in checked.configurations:
        index = str(config_.meta[INDEX_KEY])
        kind = se.kind_of(config_.type)
        if kind == "aggregate":
            partial["aggregates"][index] = se.shard_statistic(frame, config_, sensitive, key)
        elif kind == "unsupported":
            partial["unsupported"].append({"index": int(index), "type": config_.type})
    if config.screens.enabled:
        partial["screens"] = _screen_parts(screened, reference, config, key)
    return partial


def quarantine_mask(
    frame: pd.DataFrame, reference: pd.DataFrame | None, config: g.ValidationConfig
) -> tuple[Any, str]:
    """The outlier rows of one shard, or ``(None, why)`` when they cannot be judged per shard
    (the batch basis needs the whole batch's median/MAD)."""
    if not config.screens.enabled:
        return None, "quarantine needs the screens (they are off in the policy)"
    if reference is None or config.screens.outlier_basis != "reference":
        return None, (
            "quarantine over several shards needs outliers judged against a reference "
            "(without a reference, or with drift expected, the whole batch's median/MAD is used)"
        )
    _, mask = ss.outlier_part(frame, reference, config.screens)
    return mask, ""


def _whole(
    frame: pd.DataFrame,
    suite: Suite,
    reference: pd.DataFrame | None,
    config: g.ValidationConfig,
    screens: PoisoningReport | None,
) -> dict[str, Any]:
    """One shard: the single-task gate, its result without timestamps."""
    result, details = g.validate_dataset(
        frame, suite, reference, replace(config, render_html=False), {}, screens
    )
    details.get("validation_result", {}).pop("meta", None)
    kept = ("verdict", "message", "metrics", "findings", "tool_versions")
    data = result.to_dict()
    return {"result": {k: data[k] for k in kept}, "details": details}


def _map_counts(
    frame: pd.DataFrame, suite: Suite, sensitive: frozenset[str]
) -> dict[str, dict[str, Any]]:
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    wanted = [c for c in suite.configurations if se.kind_of(c.type) == "map"]
    if not wanted:
        return {}
    if len(frame) == 0:  # every row of the shard was quarantined: nothing to count
        zero = {"element_count": 0, "missing_count": 0, "unexpected_count": 0, "exception": None}
        return {str(c.meta[INDEX_KEY]): dict(zero) for c in wanted}
    stripped = tuple(
        ExpectationConfiguration(
            type=c.type,
            kwargs={k: v for k, v in c.kwargs.items() if k != "mostly"},
            meta=dict(c.meta),
            severity=c.severity,
        )
        for c in wanted
    )
    used = _columns_read(wanted, frame.columns)
    gx_result = run_suite(frame[used], Suite(suite.name, suite.sha256, stripped))
    g.redact(gx_result, sensitive, keep_values=False)
    counts: dict[str, dict[str, Any]] = {}
    for item in gx_result.get("results", []):
        meta = (item.get("expectation_config") or {}).get("meta") or {}
        result = item.get("result") or {}
        counts[str(meta[INDEX_KEY])] = {
            "element_count": result.get("element_count"),
            "missing_count": result.get("missing_count"),
            "unexpected_count": result.get("unexpected_count"),
            "exception": g._exception_message(item.get("exception_info") or {}),
        }
    return counts


def _columns_read(expectations: Sequence[Any], columns: Any) -> list[Any]:
    """The frame's columns the map expectations name (all of them if one names none: GX
    hashes and copies every column it is given, so a shard's GX run gets only these)."""
    named: set[Any] = set()
    for expectation in expectations:
        kwargs = expectation.kwargs
        found = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
        found += list(kwargs.get("column_list") or [])
        if not found:
            return list(columns)
        named.update(found)
    return [c for c in columns if c in named] or list(columns)


def _screen_parts(
    frame: pd.DataFrame, reference: pd.DataFrame | None, config: g.ValidationConfig, key: bytes
) -> dict[str, Any]:
    screens = config.screens
    if reference is not None and len(reference) == 0:
        raise DataError("screens: the reference dataset is empty (0 rows)")
    try:
        outliers, _ = ss.outlier_part(frame, reference, screens)
        return {
            "drift": ss.drift_part(frame, reference, screens, key),
            "label_shift": ss.label_part(frame, reference, screens, key),
            "outliers": outliers,
            "duplicates": ss.duplicate_part(frame, reference, screens, key),
        }
    except (TypeError, ValueError) as err:
        raise DataError(f"screens: cannot compare the datasets ({err})") from err
