"""Group rates and disparities from cell counts, and their vectorised bootstrap.

Every statistic here depends on the rows only through the counts of the cells
(group, label, candidate prediction[, champion prediction]). Resampling N rows with
replacement is therefore exactly a multinomial draw of N over those cells with the observed
cell frequencies: 1,000 resamples of 100,000 rows are 1,000 draws over a few dozen cells.
With a champion, both models share each draw (a paired bootstrap). Per-group rates get
percentile intervals, disparities basic (reverse-percentile) ones (see basic_interval).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

METHOD = (
    "multinomial bootstrap of the (group, label, prediction[, champion prediction]) cell "
    "counts, exact for row resampling; percentile intervals for group rates, basic "
    "(reverse-percentile) intervals for disparities; paired with the champion"
)
RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")
DISPARITIES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
)


def cell_counts(
    groups: np.ndarray, y: np.ndarray, preds: list[np.ndarray], n_groups: int
) -> np.ndarray:
    """Counts per cell; cell = ((group*2 + y)*2 + pred_0)*2 + pred_1 ... (0/1 arrays)."""
    import numpy as np

    cell = groups.astype(np.int64) * 2 + y.astype(np.int64)
    for p in preds:
        cell = cell * 2 + p.astype(np.int64)
    return np.bincount(cell, minlength=n_groups * 2 ** (1 + len(preds)))


def bootstrap_counts(counts: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(resamples x cells) multinomial draws of the total over the observed cell frequencies."""
    import numpy as np

    total = int(counts.sum())
    rng = np.random.default_rng(seed)
    return rng.multinomial(total, counts / total, size=resamples)


def rates(counts: np.ndarray, n_groups: int, n_models: int, model: int) -> dict[str, np.ndarray]:
    """Per group rates of one model: arrays (draws x groups) from (draws x cells) counts."""
    import numpy as np

    shaped = counts.reshape(counts.shape[:-1] + (n_groups, 2) + (2,) * n_models)
    others = tuple(i - n_models for i in range(n_models) if i != model)  # other models' axes
    table = shaped.sum(axis=others) if others else shaped  # (..., group, y, pred)
    tn, fp = table[..., 0, 0], table[..., 0, 1]
    fn, tp = table[..., 1, 0], table[..., 1, 1]
    n = tn + fp + fn + tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "size": n.astype(float),
            "selection_rate": (tp + fp) / n,
            "true_positive_rate": tp / (tp + fn),
            "false_positive_rate": fp / (fp + tn),
            "accuracy": (tp + tn) / n,
        }


def disparities(group_rates: dict[str, np.ndarray], judged: np.ndarray) -> dict[str, np.ndarray]:
    """Differences (max - min over judged groups) and ratios (min / max) of the rates."""
    import numpy as np

    def spread(name: str) -> tuple[np.ndarray, np.ndarray]:
        values = group_rates[name][..., judged]
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            high, low = np.nanmax(values, axis=-1), np.nanmin(values, axis=-1)
            ratio = np.where(high > 0, low / high, 1.0)
        return high - low, ratio

    dp_diff, dp_ratio = spread("selection_rate")
    tpr_diff, tpr_ratio = spread("true_positive_rate")
    fpr_diff, fpr_ratio = spread("false_positive_rate")
    return {
        "demographic_parity_difference": dp_diff,
        "demographic_parity_ratio": dp_ratio,
        "equalized_odds_difference": np.fmax(tpr_diff, fpr_diff),
        "equalized_odds_ratio": np.fmin(tpr_ratio, fpr_ratio),
    }


def basic_interval(
    point: float, draws: np.ndarray, confidence: float, low: float, high: float
) -> list[float] | None:
    """Basic (reverse-percentile) interval ``[2p - q_hi, 2p - q_lo]``, clipped to its range.

    Used for disparities: a max-minus-min over groups is biased upward under resampling (the
    noise of every group widens the spread), and the percentile interval would carry that bias
    into the gate, failing fair models whose groups are small; the basic interval reflects it.
    """
    import math

    quantiles = interval(draws, confidence)
    if quantiles is None or math.isnan(point):
        return None
    return [max(low, 2 * point - quantiles[1]), min(high, 2 * point - quantiles[0])]


def interval(draws: np.ndarray, confidence: float) -> list[float] | None:
    """Percentile interval (NaN draws dropped); None when nothing is left."""
    import numpy as np

    finite = draws[np.isfinite(draws)]
    if not len(finite):
        return None
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return [float(low), float(high)]
