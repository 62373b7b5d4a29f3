"""Paired statistics for shadow evaluation: metrics, paired bootstrap, McNemar's test, PSI.

Every metric is computed from sums of per-row values weighted by row counts, so a point
estimate (all weights 1) and a bootstrap resample (the multinomial counts of one draw of row
indices, shared by both models) run the same code. Additive metrics (accuracy, log loss,
Brier, precision, recall, F1, RMSE, MAE, R²) come from one matrix product per block of
resamples; ROC AUC is the exact weighted Mann-Whitney statistic (ties count one half) from a
prefix sum over the negatives sorted by score, so each resample costs O(rows), not a sort.
Binary classification only: ``labels`` are 0/1 and ``scores`` the positive-class probability.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

CLASSIFICATION = "classification"
REGRESSION = "regression"
CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "log_loss", "brier", "precision", "recall", "f1")
REGRESSION_METRICS = ("rmse", "mae", "r2")
HIGHER_IS_BETTER = frozenset({"roc_auc", "accuracy", "precision", "recall", "f1", "r2"})
_COMPONENTS = {
    CLASSIFICATION: ("n", "pos", "correct", "log_loss", "brier", "tp", "fp"),
    REGRESSION: ("n", "y", "y2", "se", "ae"),
}
LOG_EPS = 1e-15
BLOCK = 16  # resamples per matrix product
EXACT_FLOAT32 = 2**24  # below this many rows, float32 sums of 0/1 columns are exact
STREAMS = 2  # fixed, so that results do not depend on the number of cores


@dataclass(frozen=True)
class Predictions:
    """What one model said about every row: labels (0/1 or values) and scores."""

    labels: np.ndarray
    scores: np.ndarray


def metric_names(task: str) -> tuple[str, ...]:
    return CLASSIFICATION_METRICS if task == CLASSIFICATION else REGRESSION_METRICS


def components(task: str, y: np.ndarray, pred: Predictions) -> np.ndarray:
    """Per-row additive values, one column per name in ``_COMPONENTS[task]``."""
    import numpy as np

    if task == CLASSIFICATION:
        hit = pred.labels == 1
        p = np.clip(pred.scores.astype(np.float64), LOG_EPS, 1.0 - LOG_EPS)
        columns = [
            np.ones(len(y)),
            y,
            pred.labels == y,
            -(y * np.log(p) + (1 - y) * np.log1p(-p)),
            (pred.scores - y) ** 2,
            hit & (y == 1),
            hit & (y == 0),
        ]
    else:
        error = pred.labels - y
        columns = [np.ones(len(y)), y, y * y, error * error, np.abs(error)]
    return np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])


def metrics_from_sums(task: str, sums: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics from weighted component sums (last axis in ``_COMPONENTS`` order)."""
    import numpy as np

    s = {name: sums[..., i] for i, name in enumerate(_COMPONENTS[task])}
    n = s["n"]
    with np.errstate(divide="ignore", invalid="ignore"):
        if task == CLASSIFICATION:
            tp, fp = s["tp"], s["fp"]
            predicted, pos = tp + fp, s["pos"]
            return {
                "accuracy": s["correct"] / n,
                "log_loss": s["log_loss"] / n,
                "brier": s["brier"] / n,
                "precision": np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1), 0),
                "recall": np.where(pos > 0, tp / np.where(pos > 0, pos, 1), 0),
                "f1": np.where(predicted + pos > 0, 2 * tp / np.maximum(predicted + pos, 1), 0),
            }
        total = s["y2"] - s["y"] ** 2 / n
        return {
            "rmse": np.sqrt(s["se"] / n),
            "mae": s["ae"] / n,
            "r2": np.where(total > 0, 1 - s["se"] / np.where(total > 0, total, 1), np.nan),
        }


class AucIndex:
    """Precomputed ranks of one model's scores over a set of rows, for weighted ROC AUC."""

    def __init__(self, y: np.ndarray, scores: np.ndarray, rows: np.ndarray | None = None) -> None:
        import numpy as np

        rows = np.arange(len(y)) if rows is None else rows
        positive = y[rows] == 1
        neg = rows[~positive]
        neg_sorted = neg[np.argsort(scores[neg], kind="stable")]
        pos = rows[positive]
        sorted_scores = scores[neg_sorted]
        self.left = np.searchsorted(sorted_scores, scores[pos], "left")
        right = np.searchsorted(sorted_scores, scores[pos], "right")
        self.right = right if bool(np.any(right != self.left)) else None
        self.neg_sorted = _as_range(neg_sorted)
        self.pos = _as_range(pos)

    def auc(self, weights: np.ndarray) -> float:
        """Weighted P(score of a positive > score of a negative), ties one half; NaN if undefined.

        ``weights`` are int32 row counts (their total must stay below 2**31).
        """
        import numpy as np

        prefix = np.zeros(_length(self.neg_sorted) + 1, dtype=weights.dtype)
        np.cumsum(weights[self.neg_sorted], out=prefix[1:])
        wp = weights[self.pos].astype(np.float64)
        below = prefix[self.left].astype(np.float64)
        if self.right is not None:
            below = (below + prefix[self.right]) * 0.5
        denominator = float(wp.sum()) * float(prefix[-1])
        return float(np.dot(wp, below)) / denominator if denominator > 0 else math.nan


def _as_range(index: np.ndarray) -> np.ndarray | slice:
    """A contiguous ascending index as a slice (a view instead of a gather)."""
    import numpy as np

    if len(index) and index[-1] - index[0] == len(index) - 1 and bool(np.all(np.diff(index) == 1)):
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def _length(index: np.ndarray | slice) -> int:
    return index.stop - index.start if isinstance(index, slice) else len(index)


@dataclass
class _Group:
    """The rows of one slice (``rows`` None: all rows) and what the bootstrap needs of them."""

    rows: np.ndarray | None
    values: np.ndarray  # (rows, components × models)
    aucs: list[AucIndex]


def _build_group(
    task: str, y: np.ndarray, models: list[Predictions], rows: np.ndarray | None
) -> _Group:
    import numpy as np

    sel = slice(None) if rows is None else rows
    values = np.hstack([components(task, y[sel], _take(p, sel)) for p in models])
    aucs = [AucIndex(y, p.scores, rows) for p in models] if task == CLASSIFICATION else []
    return _Group(rows, np.ascontiguousarray(values), aucs)


def _take(pred: Predictions, sel: Any) -> Predictions:
    return Predictions(pred.labels[sel], pred.scores[sel])


def _group_metrics(task: str, group: _Group, sums: np.ndarray, aucs: np.ndarray) -> list[dict]:
    """Per model: metric name -> array over resamples (or a 0-d array for a point estimate)."""
    width = len(_COMPONENTS[task])
    out = []
    for m in range(sums.shape[-1] // width):
        metrics = metrics_from_sums(task, sums[..., m * width : (m + 1) * width])
        if task == CLASSIFICATION:
            metrics = {"roc_auc": aucs[..., m], **metrics}
        out.append(metrics)
    return out


def point_metrics(
    task: str, y: np.ndarray, models: list[Predictions], rows: np.ndarray | None = None
) -> list[dict[str, float]]:
    """Metrics of each model on all rows (or on ``rows``)."""
    import numpy as np

    group = _build_group(task, y, models, rows)
    ones = np.ones(len(y), dtype=np.int32)
    aucs = np.array([a.auc(ones) for a in group.aucs])
    per_model = _group_metrics(task, group, group.values.sum(axis=0), aucs)
    return [{k: float(v) for k, v in m.items()} for m in per_model]


def bootstrap_distributions(
    task: str,
    y: np.ndarray,
    models: list[Predictions],
    groups: Mapping[str, np.ndarray | None],
    resamples: int,
    seed: int,
) -> dict[str, list[dict[str, np.ndarray]]]:
    """Metric values per resample, per group and model; all share the same row draws.

    Rows are first put in (label, first model's score) order: the multinomial counts are
    exchangeable, so this changes nothing statistically but turns the first model's AUC
    gathers into contiguous slices. Resamples run in ``STREAMS`` seeded streams, in threads,
    with BLAS on one thread each; the block products are float32 below 2**24 rows.
    """
    import numpy as np
    from threadpoolctl import threadpool_limits

    y, models, groups = _reordered(y, models, groups)
    built = {name: _build_group(task, y, models, rows) for name, rows in groups.items()}
    dtype = np.float32 if len(y) < EXACT_FLOAT32 else np.float64
    for group in built.values():
        group.values = group.values.astype(dtype)
    sums = {name: np.empty((resamples, g.values.shape[1])) for name, g in built.items()}
    aucs = {name: np.full((resamples, len(g.aucs)), np.nan) for name, g in built.items()}
    bounds = np.linspace(0, resamples, STREAMS + 1).astype(int)
    streams = np.random.SeedSequence(seed).spawn(STREAMS)
    jobs = [
        (built, len(y), streams[i], bounds[i], bounds[i + 1], sums, aucs) for i in range(STREAMS)
    ]
    workers = min(STREAMS, os.cpu_count() or 1)
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda job: _run_stream(*job), jobs))
    return {
        name: _group_metrics(task, group, sums[name], aucs[name]) for name, group in built.items()
    }


def _reordered(
    y: np.ndarray, models: list[Predictions], groups: Mapping[str, np.ndarray | None]
) -> tuple[np.ndarray, list[Predictions], dict[str, np.ndarray | None]]:
    import numpy as np

    order = np.lexsort((models[0].scores, y))
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    moved = {
        name: None if rows is None else np.sort(position[rows]) for name, rows in groups.items()
    }
    return y[order], [_take(p, order) for p in models], moved


def _run_stream(
    built: dict[str, _Group],
    n: int,
    seed: np.random.SeedSequence,
    start: int,
    stop: int,
    sums: dict[str, np.ndarray],
    aucs: dict[str, np.ndarray],
) -> None:
    """Resamples ``start:stop``: counts of n row draws, block matrix products, AUCs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    blocks = {
        name: np.empty((BLOCK, n if g.rows is None else len(g.rows)), dtype=g.values.dtype)
        for name, g in built.items()
    }
    for first in range(start, stop, BLOCK):
        last = min(first + BLOCK, stop)
        for j, b in enumerate(range(first, last)):
            draw = rng.integers(0, n, n)  # int64: np.bincount would copy int32 input
            weights = np.bincount(draw, minlength=n).astype(np.int32)
            for name, group in built.items():
                blocks[name][j] = weights if group.rows is None else weights[group.rows]
                aucs[name][b] = [a.auc(weights) for a in group.aucs]
        for name, group in built.items():
            sums[name][first:last] = blocks[name][: last - first] @ group.values


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float] | None:
    """The percentile interval of the defined (non-NaN) values; None if too few are defined."""
    import numpy as np

    finite = values[np.isfinite(values)]
    if len(finite) < max(10, 0.9 * len(values)):
        return None
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(low), float(high)


def relative_change(delta: Any, baseline: Any) -> Any:
    """(candidate − champion) / |champion|, NaN where the champion's value is 0."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(baseline) > 0, delta / np.abs(baseline), np.nan)


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on the discordant pairs of two classifiers."""

    candidate_only_wrong: int  # b: champion right, candidate wrong
    champion_only_wrong: int  # c: candidate right, champion wrong
    statistic: float
    p_value: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate_only_wrong": self.candidate_only_wrong,
            "champion_only_wrong": self.champion_only_wrong,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "method": self.method,
        }


def mcnemar(b: int, c: int, exact_below: int = 25) -> McNemar:
    """Exact two-sided binomial test when b + c < ``exact_below``, else χ² with continuity."""
    from scipy import stats

    n = b + c
    if n == 0:
        return McNemar(b, c, 0.0, 1.0, "none (no discordant pairs)")
    if n < exact_below:
        p = min(1.0, 2.0 * float(stats.binom.cdf(min(b, c), n, 0.5)))
        return McNemar(b, c, float(min(b, c)), p, "exact binomial")
    statistic = (abs(b - c) - 1.0) ** 2 / n
    return McNemar(b, c, statistic, float(stats.chi2.sf(statistic, 1)), "chi-square, corrected")


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10, eps: float = 1e-4) -> float:
    """Population stability index of ``actual`` against ``expected`` (quantile bins)."""
    import numpy as np

    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, "right"), minlength=len(edges) + 1)
    a = np.bincount(np.searchsorted(edges, actual, "right"), minlength=len(edges) + 1)
    pe = np.maximum(e / max(len(expected), 1), eps)
    pa = np.maximum(a / max(len(actual), 1), eps)
    return float(np.sum((pa - pe) * np.log(pa / pe)))
