"""No raw value in validation evidence: what GX reports about a column that may hold PII.

GX puts row values in several places of an expectation result: ``observed_value`` (the
most common value, the distinct values, the min/max of a column), ``partial_unexpected_*``,
``unexpected_list``/``_index_list``/``_rows``, ``details`` (``value_counts``...) and
exception messages and tracebacks (``could not convert 'John'``). A column is *sensitive*
when it is not numeric (text may be a name, free text, an address), when its name says
PII (``ssn``, ``phone``, ``card``...), or when its digits look like card numbers, SSNs or
phone numbers. For those columns every value-bearing field is replaced by a description
(``<redacted: list of 12>``); counts and percentages stay. Numeric, non-PII columns keep
their aggregates; their sampled rows only with ``keep_unexpected_values``. Table-level
results (row counts, column names) stay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# Sampled row values: dropped unless asked for (and then only for non-sensitive columns).
SAMPLED_PREFIXES = ("partial_unexpected", "unexpected_list", "unexpected_index", "unexpected_rows")
KEPT_KEYS = frozenset(
    {
        "element_count",
        "missing_count",
        "missing_percent",
        "unexpected_count",
        "unexpected_percent",
        "unexpected_percent_total",
        "unexpected_percent_nonmissing",
    }
)
REDACTED = "<redacted>"
DIGIT_SAMPLE = 200


def sensitive_columns(frame: pd.DataFrame) -> frozenset[str]:
    """Columns whose values must never appear in a report (see the module docstring)."""
    from mlsecops_provider.core.pii.plan import digit_types, hinted_entity, is_numeric

    sensitive = set()
    for column in map(str, frame.columns):
        series = frame[column]
        if not is_numeric(series) or hinted_entity(column) or "name" in column.lower():
            sensitive.add(column)
            continue
        sample = series.dropna().head(DIGIT_SAMPLE).tolist()
        if any(digit_types(sample, column, ("CREDIT_CARD", "US_SSN", "PHONE_NUMBER"))):
            sensitive.add(column)
    return frozenset(sensitive)


def describe(value: Any) -> Any:
    """What stands in for a value: its kind and size, never its content."""
    if isinstance(value, (list, tuple, set)):
        return f"{REDACTED[:-1]}: list of {len(value)}>"
    if isinstance(value, Mapping):
        return {"redacted": f"{REDACTED[:-1]}: {len(value)} entries>"}
    return REDACTED


def redact_result(
    gx_result: dict[str, Any], sensitive: Iterable[str] | None = None, keep_values: bool = False
) -> dict[str, Any]:
    """Redact every expectation result in place; ``sensitive=None``: every column is."""
    columns = None if sensitive is None else frozenset(sensitive)
    for item in gx_result.get("results", []):
        config = item.get("expectation_config") or {}
        names = _columns_of(config.get("kwargs") or {})
        secret = bool(names) and (columns is None or bool(names & columns))
        values = item.get("result")
        if isinstance(values, dict):
            _redact_values(values, secret, keep_values)
        if secret:
            _redact_exception(item)
    return gx_result


def _redact_values(values: dict[str, Any], secret: bool, keep_values: bool) -> None:
    for key in list(values):
        if key.startswith(SAMPLED_PREFIXES) and (secret or not keep_values):
            del values[key]
        elif secret and key not in KEPT_KEYS:
            values[key] = describe(values[key])


def _redact_exception(item: dict[str, Any]) -> None:
    info = item.get("exception_info")
    if not isinstance(info, dict):
        return
    for entry in [info, *(v for v in info.values() if isinstance(v, dict))]:
        for key in ("exception_message", "exception_traceback"):
            if entry.get(key):
                entry[key] = f"{REDACTED} (the column may hold PII)"


def _columns_of(kwargs: Mapping[str, Any]) -> frozenset[str]:
    names = [kwargs.get(k) for k in ("column", "column_A", "column_B")]
    names += list(kwargs.get("column_list") or [])
    return frozenset(str(n) for n in names if n is not None)
