"""The champion's training profile: per input column its type, range or categories.

Built from the champion's training dataset, found through lineage (version -> MLflow run ->
``training`` input, read by its digest) and restricted to the columns the model takes.
A request is checked column by column: a value of the wrong type is bad input (422 for the
whole request); a number outside the training range, an unseen category or a missing value
where training had none makes its row *out of profile* (counted, then handled by policy).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError, LineageError
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import S3ClientFactory

if TYPE_CHECKING:
    import numpy as np
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
    """Per-row violation counts and what kinds of violation were seen."""

    rows_out: Any  # numpy bool array, one per row
    violations: Counter[str] = field(default_factory=Counter)

    @property
    def out_of_profile(self) -> int:
        return int(self.rows_out.sum())


@dataclass(frozen=True)
class TrainingProfile:
    columns: tuple[ColumnProfile, ...]
    margin: float = 0.0
    source: dict[str, str] = field(default_factory=dict)

    def types_problem(self, frame: pd.DataFrame) -> str | None:
        """One line naming the first missing column or value of the wrong type, else None."""
        missing = [c.name for c in self.columns if c.name not in frame.columns]
        if missing:
            return f"missing column(s) {missing[:10]}"
        for column in self.columns:
            problem = _type_problem(column, frame[column.name])
            if problem:
                return f"column {column.name!r}: {problem}"
        return None

    def check(self, frame: pd.DataFrame) -> ProfileCheck:
        """Which rows are outside the profile (types must have been checked first)."""
        import numpy as np

        rows_out = np.zeros(len(frame), dtype=bool)
        seen: Counter[str] = Counter()
        for column in self.columns:
            for kind, mask in _violations(column, frame[column.name], self.margin):
                count = int(mask.sum())
                if count:
                    seen[kind] += count
                    rows_out |= mask
        return ProfileCheck(rows_out, seen)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns], "source": dict(self.source)}


def _type_problem(column: ColumnProfile, values: pd.Series) -> str | None:
    import numbers

    import pandas as pd

    present = values[values.notna()]
    if column.kind == NUMERIC:
        fast = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
        if not fast and not present.map(_is_number).all():
            return "expected numbers"
    elif column.kind == BOOLEAN:
        if not present.map(lambda v: isinstance(v, (bool, numbers.Integral)) and v in (0, 1)).all():
            return "expected true or false"
    elif not present.map(lambda v: isinstance(v, str)).all():
        return "expected text"
    return None


def _is_number(value: Any) -> bool:
    import numbers

    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _violations(
    column: ColumnProfile, values: pd.Series, margin: float
) -> list[tuple[str, np.ndarray]]:
    import pandas as pd

    found = []
    nulls = values.isna().to_numpy()
    if not column.nullable:
        found.append(("missing", nulls))
    if column.kind == NUMERIC and column.minimum is not None and column.maximum is not None:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        slack = (column.maximum - column.minimum) * margin
        with_values = ~nulls
        low = with_values & (numbers < column.minimum - slack)
        high = with_values & (numbers > column.maximum + slack)
        found.append(("range", low | high))
    elif column.kind == CATEGORY and column.categories is not None:
        unseen = (~nulls) & ~values.astype(str).isin(column.categories).to_numpy()
        found.append(("category", unseen))
    return found


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
