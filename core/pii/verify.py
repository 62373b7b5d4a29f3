"""The second scan: every value of every output column that may hold text or digits.

* free-text columns: the residual the text pipeline left after its own check (rules and NER
  on every final text, see :mod:`.text`);
* other text columns (transformed PII columns, clean columns): the pattern pass on every
  distinct value, values equal to a name of the table's name columns, digits-only values by
  their digits (card, SSN, phone), and rules plus NER on every value long enough to be free
  text (``free_text_min_tokens``);
* numeric columns: every value's digits (card numbers by Luhn, SSNs, phone numbers).

Excluded columns (the label) and bool/date columns are not scanned. Our own ``<TYPE…>``
tokens are never PII. The result per column: rows scanned, rows hit, entity types and the
first few row numbers, never a value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.pii.patterns import scan_text
from mlsecops_provider.core.pii.plan import NUMBER_RE, ColumnPlan, digit_types, is_numeric
from mlsecops_provider.core.pii.text import outside_tokens

if TYPE_CHECKING:
    import pandas as pd

    from mlsecops_provider.core.pii.gate import PIIConfig
    from mlsecops_provider.core.pii.text import TextScanner

EXAMPLE_ROWS = 5


def verify_output(
    output: pd.DataFrame,
    plans: Sequence[ColumnPlan],
    config: PIIConfig,
    scanner: TextScanner,
    text_residual: Mapping[str, list[list[str]]],
) -> dict[str, dict[str, Any]]:
    """Residual PII per scanned output column (see the module docstring)."""
    import pandas as pd

    kinds = {p.column: p.kind for p in plans}
    residual = {}
    for column in map(str, output.columns):
        kind = kinds.get(column, "clean")
        if kind in ("excluded", "not_scanned"):
            continue
        series = output[column]
        present = series.notna().to_numpy().copy()
        if not is_numeric(series):
            present &= (series.astype(object) != "").to_numpy()
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        if kind == "free_text" and column in text_residual:
            codes, types = range(len(series)), text_residual[column]
        elif is_numeric(series):
            types = [[t] if t else [] for t in digit_types(list(uniques), column, config.entities)]
        else:
            types = _text_types([str(u) for u in uniques], column, config, scanner)
        residual[column] = _tally(codes, present, types)
    return residual


def _text_types(
    values: list[str], column: str, config: PIIConfig, scanner: TextScanner
) -> list[list[str]]:
    found = [_structured(v, scanner) for v in values]
    digits = digit_types(values, column, config.entities)
    long = [i for i, v in enumerate(values) if len(v.split()) >= config.free_text_min_tokens]
    if long:
        for i, types in zip(long, scanner.check([values[i] for i in long], ner=True), strict=True):
            found[i] = types
    return [f + ([d] if d else []) for f, d in zip(found, digits, strict=True)]


def _structured(value: str, scanner: TextScanner) -> list[str]:
    """A cell of a column that is not free text: the pattern pass, and whether the cell is a
    name from the table's name columns (the lexicon would judge category labels as names)."""
    if NUMBER_RE.fullmatch(value):  # a number written as text: judged by its digits only
        return []
    types = [s.entity_type for s in outside_tokens(value, scan_text(value, scanner.entities))]
    if "PERSON" in scanner.entities and scanner.names.is_value(value):
        types.append("PERSON")
    return types


def _tally(codes: Any, present: Any, types: Sequence[list[str]]) -> dict[str, Any]:
    entity_counts: Counter[str] = Counter()
    hit_rows = []
    scanned = 0
    for row, code in enumerate(codes):
        if code < 0 or not present[row]:
            continue
        scanned += 1
        if types[code]:
            hit_rows.append(row)
            entity_counts.update(types[code])
    return {
        "rows_scanned": scanned,
        "rows_with_pii": len(hit_rows),
        "rate": round(len(hit_rows) / scanned, 6) if scanned else 0.0,
        "entity_types": dict(entity_counts),
        "example_rows": hit_rows[:EXAMPLE_ROWS],
    }
