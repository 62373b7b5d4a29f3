"""The plan: which strategy each column gets, decided from a random sample of its values.

A column is PII of one type, free text (handled value by value), clean, excluded or not
scanned. Text samples go through Presidio, the pattern pass and the name lexicon; numeric
samples are judged by their digits (card numbers by Luhn and issuer prefix, SSNs, NANP
phone numbers). A column name that announces a type (``ssn``, ``phone``, ``first_name``)
lowers the share of hits that makes the column PII (``HINT_SHARE``).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.pii.names import NameRules
from mlsecops_provider.core.pii.patterns import scan_text

if TYPE_CHECKING:
    import pandas as pd

    from mlsecops_provider.core.pii.engine import PIIEngine
    from mlsecops_provider.core.pii.gate import PIIConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ColumnPlan:
    """What the scan decided for one column."""

    column: str
    kind: str  # pii | free_text | clean | excluded | not_scanned
    dtype: str
    entity: str | None = None
    operator: str | None = None
    sampled: int = 0
    shares: dict[str, float] = field(default_factory=dict)
    numeric: bool = False


# Column-name hints: a hinted column is PII of that type from HINT_SHARE of hits on.
HINTS = (
    (re.compile(r"e[-_ ]?mail", re.I), "EMAIL_ADDRESS"),
    (re.compile(r"phone|mobile|cell|(^|_)tel($|_)|fax|msisdn", re.I), "PHONE_NUMBER"),
    (re.compile(r"ssn|social[-_ ]?sec|(^|_)sin($|_)", re.I), "US_SSN"),
    (re.compile(r"card|(^|_)cc(_|$)|(^|_)pan($|_)", re.I), "CREDIT_CARD"),
    (re.compile(r"iban|account[-_ ]?n", re.I), "IBAN_CODE"),
    (re.compile(r"(^|_)ip($|_)|ip[-_ ]?addr", re.I), "IP_ADDRESS"),
    (
        re.compile(
            r"(^|[_ ])((first|last|full|given|middle|sur|maiden|family)[_ ]?)?name($|[_ ])"
            r"|^(customer|client|contact|patient|person|owner|holder)$",
            re.I,
        ),
        "PERSON",
    ),
)
HINT_SHARE = 0.05
EMBEDDED_MIN_WORDS = 3
NUMBER_RE = re.compile(r"\s*[+-]?\d+(?:[.,]\d+)?\s*")


NOT_PERSON_NAME = re.compile(
    r"(product|file|company|bank|brand|city|street|host|domain|table|column|field|model|app|"
    r"branch|merchant|org|business|employer|device|item|event|category|dataset)[_ ]?name",
    re.I,
)


def hinted_entity(column: str) -> str | None:
    """The PII type a column's name announces (``ssn``, ``phone``, ``first_name``...)."""
    entity = next((entity for pattern, entity in HINTS if pattern.search(column)), None)
    if entity == "PERSON" and NOT_PERSON_NAME.search(column):
        return None
    return entity


def is_numeric(series: pd.Series) -> bool:
    import pandas as pd

    dtype = series.dtype
    return bool(
        (pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype))
        and not pd.api.types.is_bool_dtype(dtype)
    )


def _not_scanned(series: pd.Series) -> bool:
    import pandas as pd

    dtype = series.dtype
    return bool(
        pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
    )


def cell_digits(value: Any) -> str | None:
    """The digits of a numeric cell (an integral float counts), or of a digits-only string."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")) or not number.is_integer():
            return None
        return str(abs(int(number)))
    if isinstance(value, int) or type(value).__name__.startswith(("int", "uint")):
        return str(abs(int(value)))
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(".0"):
            text = text[:-2]
        return text if 7 <= len(text) <= 19 and text.isdigit() else None
    return None


def digit_types(values: Sequence[Any], column: str, entities: Sequence[str]) -> list[str | None]:
    """The PII type of each value's digits (card, SSN, phone), or None."""
    from mlsecops_provider.core.pii.patterns import digit_entity

    ssn_hint = hinted_entity(column) == "US_SSN"
    types = []
    for value in values:
        digits = cell_digits(value)
        entity = digit_entity(digits, ssn_hint) if digits else None
        types.append(entity if entity in entities else None)
    return types


def _sample(series: pd.Series, size: int, seed: int) -> list[Any]:
    values = series.dropna()
    if len(values) > size:
        values = values.sample(n=size, random_state=seed)
    return values.tolist()


def plan_columns(
    frame: pd.DataFrame, config: PIIConfig, engine: PIIEngine, seed: int
) -> list[ColumnPlan]:
    """Decide per column from a random sample (``seed``, fresh per run): PII of one type,
    free text, clean, excluded or not scanned. Numeric columns are judged by their digits."""
    missing = sorted(set(config.exclude_columns) - set(map(str, frame.columns)))
    if missing:
        log.warning("exclude_columns not in the dataset: %s", missing)
    plans: dict[str, ColumnPlan] = {}
    samples: dict[str, list[str]] = {}
    for column in map(str, frame.columns):
        series, dtype = frame[column], str(frame[column].dtype)
        hits: Counter[str]
        if column in config.exclude_columns:
            plans[column] = ColumnPlan(column, "excluded", dtype)
        elif _not_scanned(series):
            plans[column] = ColumnPlan(column, "not_scanned", dtype)
        elif is_numeric(series):
            sample = _sample(series, config.sample_size, seed)
            hits = Counter(t for t in digit_types(sample, column, config.entities) if t)
            plans[column] = _decide(column, dtype, len(sample), hits, config, numeric=True)
        else:
            sample = [str(v) for v in _sample(series, config.sample_size, seed)]
            tokens = sum(len(v.split()) for v in sample) / max(len(sample), 1)
            if sample and tokens >= config.free_text_min_tokens:
                plans[column] = ColumnPlan(column, "free_text", dtype, sampled=len(sample))
            else:
                samples[column] = sample
    flat = [value for sample in samples.values() for value in sample]
    found = iter(engine.analyze_batch(flat, config.entities, config.min_score, config.batch_size))
    entities = frozenset(config.entities)
    lexicon = NameRules()
    for column, sample in samples.items():
        hits = Counter()
        digits = digit_types(sample, column, config.entities)
        embedded = []  # per value with hits: is the PII only part of a longer text?
        for value, digit in zip(sample, digits, strict=True):
            results = next(found)
            number = NUMBER_RE.fullmatch(value) is not None  # judged by its digits alone
            spans = [] if number else scan_text(value, entities)
            results = [] if number else results
            types = {item.entity_type for item in results} | {s.entity_type for s in spans}
            if "PERSON" in entities and _mostly_names(value, lexicon):
                types.add("PERSON")
            if types and not digit:
                covered = [(r.start, r.end) for r in results] + [(s.start, s.end) for s in spans]
                embedded.append(_embedded(value, covered))
            hits.update(types | ({digit} if digit else set()))
        plan = _decide(column, str(frame[column].dtype), len(sample), hits, config)
        if plan.kind == "pii" and embedded and sum(embedded) * 2 > len(embedded):
            plan = replace(plan, kind="free_text", entity=None, operator=None)
        plans[column] = plan
    return [plans[str(c)] for c in frame.columns]


def _embedded(value: str, covered: list[tuple[int, int]]) -> bool:
    """PII inside a text of 3+ words that covers under half of its letters: text, not a value."""
    if len(value.split()) < EMBEDDED_MIN_WORDS:
        return False
    mask = [False] * len(value)
    for start, end in covered:
        mask[start:end] = [True] * (end - start)
    letters = [m for c, m in zip(value, mask, strict=True) if c.isalnum()]
    return bool(letters) and sum(letters) * 2 < len(letters)


def _mostly_names(value: str, rules: NameRules) -> bool:
    """A short value that the name rules (lexicon, context) take as a person for the most part."""
    if len(value) > 60:
        return False
    letters = sum(c.isalpha() for c in value)
    covered = sum(sum(c.isalpha() for c in value[s.start : s.end]) for s in rules.find(value))
    return letters > 0 and covered * 2 >= letters


def _decide(
    column: str,
    dtype: str,
    sampled: int,
    hits: Counter[str],
    config: PIIConfig,
    numeric: bool = False,
) -> ColumnPlan:
    """PII when one type's share reaches column_hit_share (HINT_SHARE for a hinted name);
    a text column with fewer hits is handled value by value (free text)."""
    shares = {t: round(n / max(sampled, 1), 4) for t, n in hits.most_common()}
    if not shares:
        return ColumnPlan(column, "clean", dtype, sampled=sampled, numeric=numeric)
    entity, share = max(shares.items(), key=lambda item: item[1])
    hint = hinted_entity(column)
    if share < config.column_hit_share and hint in shares and shares[hint] >= HINT_SHARE:
        entity, share = hint, config.column_hit_share  # the name says what the few hits are
    if share >= config.column_hit_share:
        operator = config.operators.get(entity, config.default_operator)
        return ColumnPlan(column, "pii", dtype, entity, operator, sampled, shares, numeric)
    kind = "clean" if numeric else "free_text"
    return ColumnPlan(column, kind, dtype, sampled=sampled, shares=shares, numeric=numeric)
