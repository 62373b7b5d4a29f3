"""Sensitive columns as group codes, and Fairlearn's per-group table of one model."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)
MISSING = "(missing)"


def group_codes(
    frame: pd.DataFrame, column: str, edges: Any = None
) -> tuple[np.ndarray, list[str]]:
    """Integer codes and names of a sensitive column's groups (missing values: a group).

    With ``edges`` a numeric column is cut into bands ``[a, b)`` (values outside: missing).
    """
    import numpy as np
    import pandas as pd

    if column not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:20]))
        raise DataError(f"sensitive column {column!r} is not in the dataset (columns: {shown})")
    series = frame[column]
    if edges is not None:
        if series.dtype.kind not in "iuf":
            raise DataError(f"sensitive column {column!r} has bins but is not numeric")
        labels = [f"[{a:g}, {b:g})" for a, b in zip(edges[:-1], edges[1:], strict=True)]
        series = pd.cut(series, list(edges), right=False, labels=labels)
    values = series.astype("string").fillna(MISSING).to_numpy(dtype=object)
    names, codes = np.unique(values, return_inverse=True)
    if len(names) < 2:
        raise DataError(
            f"sensitive column {column!r} is constant ({names[0] if len(names) else 'empty'!s}): "
            "no groups to compare"
        )
    return codes.astype(np.int64), [str(n) for n in names]


def metric_frame(
    y: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    names: list[str],
    primary: str,
) -> dict[str, dict[str, float | None]]:
    """Fairlearn MetricFrame by group: selection rate, TPR, FPR, accuracy, primary metric."""
    import numpy as np
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn import metrics as skm

    metrics: dict[str, Any] = {
        "selection_rate": selection_rate,
        "true_positive_rate": _safe(true_positive_rate),
        "false_positive_rate": _safe(false_positive_rate),
        "accuracy": skm.accuracy_score,
    }
    params: dict[str, dict[str, Any]] = {}
    if primary == "roc_auc":
        metrics[primary] = _safe(lambda t, _p, y_score: skm.roc_auc_score(t, y_score))
        params[primary] = {"y_score": scores}
    elif primary != "accuracy":
        scorer = {"balanced_accuracy": skm.balanced_accuracy_score, "f1": skm.f1_score}[primary]
        metrics[primary] = _safe(scorer)
    frame = MetricFrame(
        metrics=metrics,
        y_true=y,
        y_pred=labels,
        sensitive_features=np.asarray(names, dtype=object)[groups],
        sample_params=params or None,
    )
    table: dict[str, dict[str, float | None]] = {}
    for group, row in frame.by_group.iterrows():
        table[str(group)] = {k: _number(v) for k, v in row.items()}
    table["__overall__"] = {k: _number(v) for k, v in frame.overall.items()}
    return table


def _safe(fn: Any) -> Any:
    def wrapped(*args: Any, **kwargs: Any) -> float:
        try:
            return float(fn(*args, **kwargs))
        except (ValueError, ZeroDivisionError):  # e.g. one class in a small group
            return float("nan")

    return wrapped


def _number(value: Any) -> float | None:
    import math

    number = float(value)
    return None if math.isnan(number) else number


def fairlearn_disparities(
    table: dict[str, dict[str, float | None]], judged: list[str]
) -> dict[str, float | None]:
    """The four disparity figures as Fairlearn aggregates them (``between_groups``), from its
    per-group table restricted to the judged groups."""

    def spread(metric: str) -> tuple[float, float] | None:
        values = [table[g][metric] for g in judged if table[g][metric] is not None]
        if not values:
            return None
        high, low = max(values), min(values)  # type: ignore[type-var]
        return float(high - low), float(low / high) if high > 0 else 1.0  # type: ignore[operator]

    sel = spread("selection_rate")
    tpr, fpr = spread("true_positive_rate"), spread("false_positive_rate")
    eo = [s for s in (tpr, fpr) if s is not None]
    return {
        "demographic_parity_difference": sel[0] if sel else None,
        "demographic_parity_ratio": sel[1] if sel else None,
        "equalized_odds_difference": max(s[0] for s in eo) if eo else None,
        "equalized_odds_ratio": min(s[1] for s in eo) if eo else None,
    }
