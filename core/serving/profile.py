"""The champion's training profile: per input column its type, range or categories.

Built from the champion's training dataset, found through lineage (version -> MLflow run ->
``training`` input, read by its digest) and restricted to the columns the model takes.
A request is checked column by column: a value of the wrong type is bad input (422 for the
whole request); a number outside the training range, an unseen category or a missing value
where training had none makes its row *out of profile* (counted, then handled by policy).
"""

from __future__ import annotations

import logging
import math
import numbers
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError, LineageError
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import S3ClientFactory

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
NUMERIC, BOOLEAN, CATEGORY, TEXT = "numeric", "boolean", "category", "text"


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    kind: str
    minimum: float | None = None
    maximum: float | None = None
    categories: frozenset[str] | None = None
    nullable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "categories": sorted(self.categories) if self.categories is not None else None,
            "nullable": self.nullable,
        }


@dataclass(frozen=True)
class ProfileCheck:
    """Which rows are out of profile and what kinds of violation were seen."""

    rows_out: list[bool]
    violations: Counter[str] = field(default_factory=Counter)
    values: dict[str, list[Any]] = field(default_factory=dict)  # the checked columns' values

    @property
    def out_of_profile(self) -> int:
        return sum(self.rows_out)


@dataclass(frozen=True)
class TrainingProfile:
    columns: tuple[ColumnProfile, ...]
    margin: float = 0.0
    source: dict[str, str] = field(default_factory=dict)

    def inspect(self, frame: pd.DataFrame) -> tuple[str | None, ProfileCheck]:
        """A type problem (one line, None if none) and the rows outside the profile.

        Plain Python over the columns' values (one ``tolist`` per column): a request is
        usually a few rows, where pandas operations would cost more than the checks.
        """
        missing = [c.name for c in self.columns if c.name not in frame.columns]
        if missing:
            return f"missing column(s) {missing[:10]}", ProfileCheck([])
        data = {c.name: frame[c.name].tolist() for c in self.columns}  # cheapest for few rows
        rows_out = [False] * len(frame)
        seen: Counter[str] = Counter()
        for column in self.columns:
            values = data[column.name]
            problem = _type_problem(column, values)
            if problem:
                return f"column {column.name!r}: {problem}", ProfileCheck(rows_out)
            for i, value in enumerate(values):
                kind = _violation(column, value, self.margin)
                if kind:
                    seen[kind] += 1
                    rows_out[i] = True
        return None, ProfileCheck(rows_out, seen, data)

    def types_problem(self, frame: pd.DataFrame) -> str | None:
        return self.inspect(frame)[0]

    def check(self, frame: pd.DataFrame) -> ProfileCheck:
        return self.inspect(frame)[1]

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns], "source": dict(self.source)}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _type_problem(column: ColumnProfile, values: list[Any]) -> str | None:
    present = [v for v in values if not _missing(v)]
    if column.kind == NUMERIC and not all(_is_number(v) for v in present):
        return "expected numbers"
    if column.kind == BOOLEAN and not all(
        isinstance(v, (bool, numbers.Integral)) and v in (0, 1) for v in present
    ):
        return "expected true or false"
    if column.kind in (CATEGORY, TEXT) and not all(isinstance(v, str) for v in present):
        return "expected text"
    return None


def _violation(column: ColumnProfile, value: Any, margin: float) -> str | None:
    if _missing(value):
        return None if column.nullable else "missing"
    if column.kind == NUMERIC and column.minimum is not None and column.maximum is not None:
        slack = (column.maximum - column.minimum) * margin
        if not column.minimum - slack <= float(value) <= column.maximum + slack:
            return "range"
    elif column.kind == CATEGORY and column.categories is not None:
        return None if str(value) in column.categories else "category"
    return None


def build_profile(
    frame: pd.DataFrame,
    columns: tuple[str, ...],
    *,
    max_categories: int = 50,
    margin: float = 0.0,
    source: dict[str, str] | None = None,
) -> TrainingProfile:
    """The profile of ``columns`` in a training frame."""
    import pandas as pd

    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"training data lacks the model's column(s) {missing}")
    profiles = []
    for name in columns:
        values = frame[name]
        nullable = bool(values.isna().any())
        present = values.dropna()
        if pd.api.types.is_bool_dtype(values):
            profiles.append(ColumnProfile(name, BOOLEAN, nullable=nullable))
        elif pd.api.types.is_numeric_dtype(values):
            low, high = (
                (float(present.min()), float(present.max())) if len(present) else (None, None)
            )
            profiles.append(ColumnProfile(name, NUMERIC, low, high, nullable=nullable))
        else:
            distinct = frozenset(present.astype(str).unique())
            if len(distinct) <= max_categories:
                profiles.append(
                    ColumnProfile(name, CATEGORY, categories=distinct, nullable=nullable)
                )
            else:
                profiles.append(ColumnProfile(name, TEXT, nullable=nullable))
    return TrainingProfile(tuple(profiles), margin, dict(source or {}))


def champion_profile(
    settings: Settings,
    name: str,
    alias: str,
    version: str,
    columns: tuple[str, ...] | None,
    *,
    max_categories: int = 50,
    margin: float = 0.0,
    s3: S3ClientFactory | None = None,
) -> TrainingProfile:
    """The profile of the champion's training data (lineage; the dataset read by digest)."""
    from mlsecops_provider.core.data.datasets import read_table
    from mlsecops_provider.core.validation.drift import champion_training_reference

    if not columns:
        raise DataError(f"{name} v{version} does not say which columns it takes (no signature)")
    reference = champion_training_reference(settings, name, alias)
    if reference.version != version:
        raise LineageError(
            f"{name}@{alias} moved to v{reference.version} while v{version} was being loaded"
        )
    frame, _ = read_table(reference.uri, reference.sha256, s3)
    source = {
        "uri": reference.uri,
        "sha256": reference.sha256,
        "mlflow_run_id": reference.mlflow_run_id,
    }
    profile = build_profile(
        frame, columns, max_categories=max_categories, margin=margin, source=source
    )
    log.info(
        "Training profile of %s v%s from %s (%d rows)", name, version, reference.uri, len(frame)
    )
    return profile
