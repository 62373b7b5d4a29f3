"""The transformations of de-identification: one function per operator, used two ways.

A structured PII column is transformed whole (vectorised: pandas string operations, or one
call per distinct value); a free-text value gets the same functions on each detected span
through Presidio's AnonymizerEngine (``custom`` operators), so a name pseudonymised in a
column and in a note gets the same pseudonym.

Operators: ``redact`` (empty string), ``mask`` (letters and digits become ``mask_char``,
separators and the last ``mask_keep_last`` characters stay), ``replace`` (``<TYPE>``),
``drop`` (the column goes; a span in free text is redacted) and ``pseudonymize``
(``<TYPE_hhhhhhhhhhhhhhhh>``, the first 64 bits of HMAC-SHA256 under a secret key of the
entity type and value: deterministic, so joins still work, and not reversible by hashing
guessed values without the key). Nulls stay null.

:func:`verify_output` scans the output again (our own tokens ignored) for residual PII;
:func:`measure_recall` says how much of a labelled table's PII was removed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from mlsecops_provider.core.pii.engine import ColumnPlan, PIIEngine
    from mlsecops_provider.core.pii.gate import PIIConfig

OPERATORS = ("redact", "mask", "replace", "drop", "pseudonymize")
PSEUDONYM_HEX = 16
MIN_KEY_BYTES = 16
MIN_LINK_CHARS = 3
EXAMPLE_ROWS = 5
# Our own replacement tokens: ignored (never PII) when the output is scanned again.
TOKEN_RE = re.compile(r"<([A-Z][A-Z0-9_]*?)(?:_[0-9a-f]{16})?>")
_ALNUM_RE = re.compile(r"[^\W_]")  # letters and digits, any script


def pseudonym(key: bytes, entity: str, value: str) -> str:
    digest = hmac.new(key, f"{entity}\x1f{value}".encode(), hashlib.sha256).hexdigest()
    return f"<{entity}_{digest[:PSEUDONYM_HEX]}>"


def mask(value: str, char: str = "*", keep_last: int = 0) -> str:
    """Letters and digits become ``char``; the last ``keep_last`` stay if the value is longer."""
    repl = char.replace("\\", "\\\\")
    if keep_last and len(value) > keep_last:
        return _ALNUM_RE.sub(repl, value[:-keep_last]) + value[-keep_last:]
    return _ALNUM_RE.sub(repl, value)


@dataclass(frozen=True)
class Transformer:
    """Which operator each entity type gets, and how to apply it."""

    operators: Mapping[str, str] = field(default_factory=dict)
    default_operator: str = "replace"
    key: bytes | None = field(default=None, repr=False)
    mask_char: str = "*"
    mask_keep_last: int = 0

    def __post_init__(self) -> None:
        for entity, name in {**self.operators, "default_operator": self.default_operator}.items():
            if name not in OPERATORS:
                raise ConfigError(f"operator {name!r} for {entity}: expected one of {OPERATORS}")
        if self.uses_key:
            if not self.key:
                raise ConfigError("pseudonymize needs a key, and none was given")
            if len(self.key) < MIN_KEY_BYTES:
                raise ConfigError(f"the pseudonymisation key must be >= {MIN_KEY_BYTES} bytes")

    @property
    def uses_key(self) -> bool:
        return "pseudonymize" in (self.default_operator, *self.operators.values())

    def operator_for(self, entity: str) -> str:
        return self.operators.get(entity, self.default_operator)

    def value_function(self, entity: str) -> Callable[[str], str]:
        """The operator of ``entity`` on one value or span (``drop`` redacts a span)."""
        name = self.operator_for(entity)
        if name == "pseudonymize":
            key = self.key or b""
            return lambda text: pseudonym(key, entity, text)
        if name == "mask":
            return lambda text: mask(text, self.mask_char, self.mask_keep_last)
        if name == "replace":
            return lambda _text: f"<{entity}>"
        return lambda _text: ""

    def column(self, series: pd.Series, entity: str) -> pd.Series | None:
        """The transformed column (None: drop it); nulls stay null."""
        name = self.operator_for(entity)
        if name == "drop":
            return None
        values = series if _is_string(series) else series.astype("str").where(series.notna())
        present = values.notna()
        if name in ("replace", "redact"):
            constant = f"<{entity}>" if name == "replace" else ""
            return values.where(~present, constant)
        return map_distinct(values, self.value_function(entity))

    def presidio_operators(self, entities: set[str]) -> dict[str, Any]:
        """OperatorConfigs for Presidio's AnonymizerEngine (custom functions, plus DEFAULT)."""
        from presidio_anonymizer.entities import OperatorConfig

        configs = {
            entity: OperatorConfig("custom", {"lambda": self.value_function(entity)})
            for entity in entities
        }
        configs["DEFAULT"] = OperatorConfig("custom", {"lambda": lambda _text: "<PII>"})
        return configs


def _is_string(series: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_string_dtype(series.dtype))


def map_distinct(values: pd.Series, function: Callable[[str], Any]) -> pd.Series:
    """``function`` once per distinct non-null value, spread back to every row."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([function(str(u)) for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=values.dtype, name=values.name)


def transform_text(
    series: pd.Series,
    codes: Any,
    texts: Sequence[str],
    found: Sequence[list[Any]],
    anonymize: Callable[[str, list[Any]], str],
    links: Sequence[tuple[pd.Series, str]] = (),
) -> tuple[pd.Series, Counter[str]]:
    """Anonymise a free-text column: the analyzer's spans of each distinct text (``found``,
    in ``codes``/``texts`` order) plus, from ``links``, the row's own values of PII columns
    found verbatim in its text, which win over analyzer spans they overlap (so a name gets
    its column's pseudonym, and a name NER missed is still caught)."""
    import numpy as np
    import pandas as pd

    linked_values = [
        (column.astype("str").where(column.notna()).to_numpy(dtype=object), entity)
        for column, entity in links
    ]
    done: dict[int, str] = {}
    out = np.full(len(series), None, dtype=object)
    counts: Counter[str] = Counter()
    for row, code in enumerate(codes):
        if code < 0:
            continue
        text, spans = texts[code], found[code]
        linked = _linked_spans(text, row, linked_values)
        if linked:
            spans = linked + [s for s in spans if not _overlaps(s, linked)]
            out[row] = anonymize(text, spans)
        else:
            if code not in done:
                done[code] = anonymize(text, spans)
            out[row] = done[code]
        counts.update(span.entity_type for span in spans)
    dtype = series.dtype if pd.api.types.is_string_dtype(series.dtype) else object
    return pd.Series(out, index=series.index, dtype=dtype, name=series.name), counts


def _linked_spans(text: str, row: int, linked_values: Sequence[tuple[Any, str]]) -> list[Any]:
    if not linked_values:
        return []
    from presidio_analyzer import RecognizerResult

    spans = []
    for values, entity in linked_values:
        value = values[row]
        if not isinstance(value, str) or len(value) < MIN_LINK_CHARS:
            continue
        start = text.find(value)
        while start >= 0:
            spans.append(RecognizerResult(entity, start, start + len(value), 1.0))
            start = text.find(value, start + len(value))
    return spans


def _overlaps(span: Any, others: Sequence[Any]) -> bool:
    return any(span.start < other.end and other.start < span.end for other in others)


def measure_recall(
    before: pd.DataFrame,
    after: pd.DataFrame,
    truth: Mapping[str, tuple[str, list[str]]],
    text_columns: Sequence[str] = (),
) -> dict[str, dict[str, dict[str, float]]]:
    """Share of planted values gone from the output, per entity type.

    ``truth`` is ``{column: (entity_type, values)}`` (the generator's ``pii_truth``).
    ``columns``: the values in their own column; ``free_text``: the same values where they
    also appear inside a text column of the same row. A person counts as caught only if
    none of the name's words is left; other types if the value is not left whole.
    """
    tallies: dict[str, Counter[str]] = {"columns": Counter(), "free_text": Counter()}
    for column, (entity, values) in truth.items():
        kept = after[column].astype(str).tolist() if column in after.columns else None
        for i, value in enumerate(values):
            tallies["columns"][f"{entity}:planted"] += 1
            if kept is None or not _leaks(value, entity, kept[i]):
                tallies["columns"][f"{entity}:caught"] += 1
    for text_column in text_columns:
        source = before[text_column].astype(str).tolist()
        result = after[text_column].astype(str).tolist()
        for entity, values in truth.values():
            for i, value in enumerate(values):
                if value in source[i]:
                    tallies["free_text"][f"{entity}:planted"] += 1
                    if not _leaks(value, entity, result[i]):
                        tallies["free_text"][f"{entity}:caught"] += 1
    return {scope: _rates(tally) for scope, tally in tallies.items()}


def _leaks(value: str, entity: str, text: str) -> bool:
    if entity == "PERSON":
        return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text) for w in value.split())
    return value in text


def _rates(tally: Counter[str]) -> dict[str, dict[str, float]]:
    entities = sorted({key.split(":")[0] for key in tally})
    return {
        e: {
            "planted": tally[f"{e}:planted"],
            "caught": tally[f"{e}:caught"],
            "recall": round(tally[f"{e}:caught"] / tally[f"{e}:planted"], 4),
        }
        for e in entities
        if tally[f"{e}:planted"]
    }


def verify_output(
    output: pd.DataFrame, plans: Sequence[ColumnPlan], config: PIIConfig, engine: PIIEngine
) -> dict[str, dict[str, Any]]:
    """Residual PII per scanned output column: rows scanned and hit, types, row numbers."""
    import numpy as np

    kinds = {p.column: p.kind for p in plans}
    rng = np.random.default_rng(config.seed + 1)
    residual = {}
    for column in map(str, output.columns):
        kind = kinds.get(column, "clean")
        if kind in ("excluded", "not_scanned"):
            continue
        series = output[column]
        rows = np.flatnonzero(series.notna().to_numpy())
        if kind != "free_text" and len(rows) > config.sample_size:
            rows = np.sort(rng.choice(rows, config.sample_size, replace=False))
        residual[column] = _residual(series.iloc[rows].tolist(), rows, config, engine)
    return residual


def _residual(values: list[Any], rows: Any, config: PIIConfig, engine: PIIEngine) -> dict[str, Any]:
    """Scan values (our tokens normalised, so repeated texts are analysed once)."""
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series([TOKEN_RE.sub(r"<\1>", str(v)) for v in values]))
    found = engine.analyze_batch(
        list(uniques), config.entities, config.min_score, config.batch_size
    )
    types = [_outside_tokens(str(u), r) for u, r in zip(uniques, found, strict=True)]
    entity_counts: Counter[str] = Counter()
    hit_rows = []
    for row, code in zip(rows, codes, strict=True):
        if types[code]:
            hit_rows.append(int(row))
            entity_counts.update(types[code])
    return {
        "rows_scanned": len(values),
        "rows_with_pii": len(hit_rows),
        "rate": round(len(hit_rows) / len(values), 6) if values else 0.0,
        "entity_types": dict(entity_counts),
        "example_rows": hit_rows[:EXAMPLE_ROWS],
    }


def _outside_tokens(text: str, results: list[Any]) -> list[str]:
    """Entity types found outside our own replacement tokens."""
    tokens = [m.span() for m in TOKEN_RE.finditer(text)]
    return [
        r.entity_type
        for r in results
        if text[r.start : r.end].strip()
        and not any(start <= r.start and r.end <= end for start, end in tokens)
    ]
