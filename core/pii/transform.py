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

:func:`measure_recall` says how much of a labelled table's PII was removed (the second
scan is in :mod:`.verify`).
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


OPERATORS = ("redact", "mask", "replace", "drop", "pseudonymize")
PSEUDONYM_HEX = 16
MIN_KEY_BYTES = 16
MIN_LINK_CHARS = 3
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
        present = values.notna() & (values.astype(object) != "")  # CSV text: "" is empty
        if name in ("replace", "redact"):
            constant = f"<{entity}>" if name == "replace" else ""
            return values.where(~present, constant)
        return map_distinct(values, self.value_function(entity))

    def span_function(self) -> Callable[[str, str], str]:
        """``(entity, span text) -> replacement`` for spans in free text."""
        functions: dict[str, Callable[[str], str]] = {}

        def apply(entity: str, text: str) -> str:
            if entity not in functions:
                functions[entity] = self.value_function(entity)
            return functions[entity](text)

        return apply


def _is_string(series: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_string_dtype(series.dtype))


def map_distinct(values: pd.Series, function: Callable[[str], Any]) -> pd.Series:
    """``function`` once per distinct non-null value, spread back to every row."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([function(str(u)) if str(u) else "" for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=values.dtype, name=values.name)


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
