"""Poisoning screens: compare a new batch with a trusted reference batch.

Four screens, each vectorised with numpy/pandas:

- ``drift``: per column PSI (numeric columns binned at reference quantiles, categorical
  columns by category) and, for numeric columns, a two-sample KS test that only counts when
  ``p < ks_pvalue`` *and* ``D >= ks_min_statistic`` (huge batches make tiny shifts significant);
- ``label_shift``: total variation distance between the label distributions;
- ``outliers``: fraction of rows with any robust z-score (median/MAD) above ``outlier_z``;
- ``duplicates``: fraction of rows whose feature values repeat an earlier row of the batch
  or a reference row (row hashes from ``pandas.util.hash_pandas_object``).

A screen that cannot run (no reference) is ``skipped``, never ``pass``. Findings name columns
and figures only, never row values. Outlier rows can be returned for quarantine; nothing is
dropped here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.validation.poisoning_config import SCREENS, PoisoningConfig

__all__ = ["SCREENS", "PoisoningConfig", "PoisoningReport", "ScreenResult", "screen_dataset"]

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)

EPS = 1e-4  # floor for bin proportions in PSI (an empty bin would give log(0))
MAD_TO_SIGMA = 1.4826
ISOLATION_SAMPLE = 100_000


@dataclass(frozen=True)
class ScreenResult:
    """One screen's outcome: ``pass``, ``fail`` or ``skipped`` (with the reason)."""

    name: str
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "metrics": self.metrics,
            "findings": self.findings,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class PoisoningReport:
    """All screens, plus the outlier rows when quarantine was asked for."""

    screens: tuple[ScreenResult, ...]
    outlier_mask: np.ndarray | None = field(default=None, repr=False, compare=False)
    quarantine: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def failed(self) -> list[ScreenResult]:
        return [s for s in self.screens if s.status == "fail"]

    def get(self, name: str) -> ScreenResult:
        return next(s for s in self.screens if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {s.name: s.to_dict() for s in self.screens}


def screen_dataset(
    current: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    config: PoisoningConfig | None = None,
    *,
    quarantine: bool = False,
) -> PoisoningReport:
    """Run every screen on ``current`` (against ``reference`` where one is needed).

    With ``quarantine`` the report also holds the outlier rows (``outlier_mask`` always).
    """
    config = config or PoisoningConfig()
    if len(current) == 0:
        raise DataError("screens: the current dataset is empty (0 rows)")
    if reference is not None and len(reference) == 0:
        raise DataError("screens: the reference dataset is empty (0 rows)")
    try:
        outliers, mask = outlier_screen(current, reference, config)
        screens = (
            drift_screen(current, reference, config),
            label_shift_screen(current, reference, config),
            outliers,
            duplicate_screen(current, reference, config),
        )
    except (TypeError, ValueError) as err:  # e.g. unhashable cells in an object column
        raise DataError(f"screens: cannot compare the datasets ({err})") from err
    return PoisoningReport(screens, mask, current.loc[mask].copy() if quarantine else None)


def _status(failed: bool) -> str:
    return "fail" if failed else "pass"


def _screened_columns(frame: pd.DataFrame, config: PoisoningConfig) -> list[str]:
    skip = set(config.exclude_columns) | {config.label_column}
    return [str(c) for c in frame.columns if c not in skip]


def _is_numeric(series: pd.Series) -> bool:
    from pandas.api import types

    return types.is_numeric_dtype(series) and not types.is_bool_dtype(series)


def _floats(series: pd.Series) -> np.ndarray:
    import numpy as np

    return series.to_numpy(dtype="float64", na_value=np.nan)


def _psi_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    import numpy as np

    p = np.maximum(ref_counts / max(ref_counts.sum(), 1), EPS)
    q = np.maximum(cur_counts / max(cur_counts.sum(), 1), EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def numeric_psi(ref: np.ndarray, cur: np.ndarray, bins: int) -> float:
    """PSI over reference-quantile bins, with missing values as a bin of their own."""
    import numpy as np

    ref_ok, cur_ok = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if len(ref_ok) == 0:
        edges = np.empty(0)
    else:
        edges = np.unique(np.quantile(ref_ok, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    size = len(edges) + 1

    def counts(values: np.ndarray, missing: int) -> np.ndarray:
        binned = np.bincount(np.searchsorted(edges, values, side="right"), minlength=size)
        return np.append(binned, missing)

    return _psi_from_counts(
        counts(ref_ok, len(ref) - len(ref_ok)), counts(cur_ok, len(cur) - len(cur_ok))
    )


def categorical_psi(ref: pd.Series, cur: pd.Series) -> tuple[float, int]:
    """PSI over categories (missing values count as one); also the number of new categories."""
    ref_counts = ref.value_counts(dropna=False)
    cur_counts = cur.value_counts(dropna=False)
    categories = ref_counts.index.union(cur_counts.index, sort=False)
    new = int(len(categories) - len(ref_counts))
    psi = _psi_from_counts(
        ref_counts.reindex(categories, fill_value=0).to_numpy(dtype="float64"),
        cur_counts.reindex(categories, fill_value=0).to_numpy(dtype="float64"),
    )
    return psi, new


def _numeric_drift(ref: pd.Series, cur: pd.Series, config: PoisoningConfig) -> dict[str, Any]:
    import numpy as np
    from scipy import stats

    ref_f, cur_f = _floats(ref), _floats(cur)
    figures: dict[str, Any] = {
        "column_type": "numeric",
        "psi": numeric_psi(ref_f, cur_f, config.psi_bins),
    }
    ref_ok, cur_ok = ref_f[~np.isnan(ref_f)], cur_f[~np.isnan(cur_f)]
    ks_flag = False
    if len(ref_ok) and len(cur_ok):
        ks = stats.ks_2samp(ref_ok, cur_ok)
        figures["ks_statistic"] = float(ks.statistic)
        figures["ks_pvalue"] = float(ks.pvalue)
        ks_flag = ks.pvalue < config.ks_pvalue and ks.statistic >= config.ks_min_statistic
    figures["drifted"] = bool(figures["psi"] > config.psi_threshold or ks_flag)
    return figures


def _column_drift(ref: pd.Series, cur: pd.Series, config: PoisoningConfig) -> dict[str, Any] | str:
    """Drift figures of one column, or the reason it was not screened."""
    if _is_numeric(ref) and _is_numeric(cur):
        return _numeric_drift(ref, cur, config)
    if _is_numeric(ref) != _is_numeric(cur):
        return {"column_type": "changed", "psi": None, "drifted": True}
    if ref.nunique(dropna=False) > config.max_categories:
        return f"more than {config.max_categories} categories"
    psi, new = categorical_psi(ref, cur)
    drifted = psi > config.psi_threshold
    return {
        "column_type": "categorical",
        "psi": psi,
        "new_categories": new,
        "drifted": bool(drifted),
    }


def drift_screen(
    current: pd.DataFrame, reference: pd.DataFrame | None, config: PoisoningConfig
) -> ScreenResult:
    """Per-column PSI/KS against the reference; a screened column missing from the batch fails."""
    if reference is None:
        return ScreenResult("drift", "skipped", reason="no reference dataset")
    columns: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    findings: list[dict[str, Any]] = []
    for col in _screened_columns(reference, config):
        if col not in current.columns:
            findings.append({"screen": "drift", "column": col, "reason": "missing from batch"})
            continue
        figures = _column_drift(reference[col], current[col], config)
        if isinstance(figures, str):
            skipped[col] = figures
            continue
        columns[col] = figures
        if figures["drifted"]:
            findings.append({"screen": "drift", "column": col, **_rounded(figures)})
    new_columns = sorted(set(_screened_columns(current, config)) - set(reference.columns))
    psis = [f["psi"] for f in columns.values() if f["psi"] is not None]
    metrics = {
        "columns_screened": len(columns),
        "columns_drifted": sum(f["drifted"] for f in columns.values()),
        "max_psi": round(max(psis), 6) if psis else None,
        "columns": {c: _rounded(f) for c, f in columns.items()},
        "skipped_columns": skipped,
        "new_columns": new_columns,
    }
    return ScreenResult("drift", _status(bool(findings)), metrics, findings)


def _rounded(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in figures.items()}


def label_shift_screen(
    current: pd.DataFrame, reference: pd.DataFrame | None, config: PoisoningConfig
) -> ScreenResult:
    """Total variation distance (and PSI) between reference and batch label distributions."""
    label = config.label_column
    if label is None:
        return ScreenResult("label_shift", "skipped", reason="no label column given")
    if reference is None:
        return ScreenResult("label_shift", "skipped", reason="no reference dataset")
    if label not in reference.columns:
        raise DataError(f"screens: label column {label!r} is missing from the reference dataset")
    if label not in current.columns:
        finding = {"screen": "label_shift", "column": label, "reason": "missing from batch"}
        return ScreenResult("label_shift", "fail", {}, [finding])
    p = reference[label].value_counts(normalize=True, dropna=False)
    q = current[label].value_counts(normalize=True, dropna=False)
    classes = p.index.union(q.index, sort=False)
    p, q = p.reindex(classes, fill_value=0.0), q.reindex(classes, fill_value=0.0)
    tvd = float(0.5 * (p - q).abs().sum())
    psi = _psi_from_counts(p.to_numpy(dtype="float64"), q.to_numpy(dtype="float64"))
    metrics = {"tvd": round(tvd, 6), "psi": round(psi, 6), "classes": len(classes)}
    failed = tvd > config.label_shift_threshold
    findings = [{"screen": "label_shift", "column": label, **metrics}] if failed else []
    return ScreenResult("label_shift", _status(failed), metrics, findings)


def _robust_scale(base: np.ndarray) -> tuple[float, float] | None:
    """Median and MAD-based sigma of a column, or None when the MAD is zero or undefined."""
    import numpy as np

    if np.isnan(base).all():
        return None
    median = float(np.nanmedian(base))
    sigma = MAD_TO_SIGMA * float(np.nanmedian(np.abs(base - median)))
    return (median, sigma) if sigma > 0 else None


def outlier_screen(
    current: pd.DataFrame, reference: pd.DataFrame | None, config: PoisoningConfig
) -> tuple[ScreenResult, np.ndarray]:
    """Rows with any |robust z| above ``outlier_z``; median/MAD come from the reference if any
    (unless ``outlier_basis`` is ``batch``: a batch known to have drifted is judged by itself)."""
    import numpy as np

    by_reference = reference is not None and config.outlier_basis == "reference"
    base_frame = reference if by_reference and reference is not None else current
    mask = np.zeros(len(current), dtype=bool)
    per_column: dict[str, int] = {}
    skipped: dict[str, str] = {}
    for col in _screened_columns(current, config):
        if not _is_numeric(current[col]):
            continue
        if col not in base_frame.columns or not _is_numeric(base_frame[col]):
            skipped[col] = "not numeric in the reference"
            continue
        scale = _robust_scale(_floats(base_frame[col]))
        if scale is None:
            skipped[col] = "median absolute deviation is zero"
            continue
        with np.errstate(invalid="ignore"):
            flagged = np.abs(_floats(current[col]) - scale[0]) > config.outlier_z * scale[1]
        per_column[col] = int(flagged.sum())
        mask |= flagged
    rows = int(mask.sum())
    rate = rows / len(current)
    metrics: dict[str, Any] = {
        "rate": round(rate, 6),
        "rows": rows,
        "columns": per_column,
        "skipped_columns": skipped,
        "basis": "reference" if by_reference else "batch",
    }
    if config.isolation_forest:
        metrics["isolation_forest_rate"] = isolation_forest_rate(current, base_frame, config)
    failed = rate > config.outlier_rate_threshold
    top = sorted((c for c, n in per_column.items() if n), key=lambda c: -per_column[c])
    findings = [{"screen": "outliers", "rate": metrics["rate"], "rows": rows, "columns": top}]
    return ScreenResult("outliers", _status(failed), metrics, findings if failed else []), mask


def isolation_forest_rate(
    current: pd.DataFrame, base: pd.DataFrame, config: PoisoningConfig
) -> float | None:
    """Fraction of batch rows an IsolationForest fitted on the base data calls anomalous."""
    from sklearn.ensemble import IsolationForest

    cols = [
        c
        for c in _screened_columns(current, config)
        if c in base.columns and _is_numeric(current[c]) and _is_numeric(base[c])
    ]
    if not cols:
        return None
    sample = base[cols].sample(min(len(base), ISOLATION_SAMPLE), random_state=0)
    medians = sample.median()
    forest = IsolationForest(random_state=0, n_jobs=1).fit(sample.fillna(medians).to_numpy())
    predicted = forest.predict(current[cols].fillna(medians).to_numpy())
    return round(float((predicted == -1).mean()), 6)


def _row_hashes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    import pandas as pd

    return pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()


def duplicate_screen(
    current: pd.DataFrame, reference: pd.DataFrame | None, config: PoisoningConfig
) -> ScreenResult:
    """Rows whose feature values repeat an earlier batch row or any reference row."""
    import numpy as np
    import pandas as pd

    columns = _screened_columns(current, config)
    if not columns:
        return ScreenResult("duplicates", "skipped", reason="no feature columns to compare")
    hashes = _row_hashes(current, columns)
    within = pd.Series(hashes).duplicated().to_numpy()
    of_reference = np.zeros(len(current), dtype=bool)
    basis = "batch"
    if reference is not None and set(columns) <= set(map(str, reference.columns)):
        of_reference = pd.Series(hashes).isin(_row_hashes(reference, columns)).to_numpy()
        basis = "batch and reference"
    duplicated = within | of_reference
    rate = float(duplicated.mean())
    metrics = {
        "rate": round(rate, 6),
        "rows": int(duplicated.sum()),
        "within_batch": int(within.sum()),
        "of_reference": int(of_reference.sum()),
        "columns_hashed": len(columns),
        "basis": basis,
    }
    failed = rate > config.duplicate_rate_threshold
    findings = [{"screen": "duplicates", **metrics}] if failed else []
    return ScreenResult("duplicates", _status(failed), metrics, findings)
