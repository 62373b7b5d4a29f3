"""How well an attack separates two groups of rows: AUC with a bootstrap interval, advantage, TPR.

``scores`` are the attack's "member" (or "attacked") scores, higher = more likely a member;
``truth`` is 1 for members, 0 for non-members. The bootstrap resamples members and non-members
separately (stratified), so every resample has both groups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney statistic (ties count one half)."""
    from scipy.stats import rankdata

    pos = int(truth.sum())
    neg = len(truth) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[truth == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def bootstrap_auc(
    truth: np.ndarray, scores: np.ndarray, resamples: int, confidence: float, seed: int
) -> tuple[float, float]:
    """Percentile interval of the AUC over stratified resamples of the rows."""
    import numpy as np
    from scipy.stats import rankdata

    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(truth == 1), np.flatnonzero(truth == 0)
    draws = np.empty(resamples)
    for i in range(resamples):
        p = scores[rng.choice(pos, len(pos))]
        n = scores[rng.choice(neg, len(neg))]
        ranks = rankdata(np.concatenate([p, n]))
        draws[i] = (ranks[: len(p)].sum() - len(p) * (len(p) + 1) / 2) / (len(p) * len(n))
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    return float(low), float(high)


def roc_figures(truth: np.ndarray, scores: np.ndarray, fpr_at: float) -> dict[str, float]:
    """Advantage (max TPR - FPR) and the TPR at a false-positive rate of at most ``fpr_at``."""
    import numpy as np
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(truth, scores)
    low_fpr = fpr <= fpr_at
    best = int(np.argmax(tpr - fpr))
    return {
        "advantage": float(max(0.0, tpr[best] - fpr[best])),
        "tpr_at_low_fpr": float(tpr[low_fpr].max()) if low_fpr.any() else 0.0,
    }


def score_attack(
    truth: np.ndarray, scores: np.ndarray, resamples: int, confidence: float, seed: int,
    fpr_at: float,
) -> dict[str, Any]:  # fmt: skip
    """Every figure of one attack on rows it did not train on."""
    value = auc(truth, scores)
    low, high = bootstrap_auc(truth, scores, resamples, confidence, seed)
    return {
        "auc": value,
        "auc_ci": [low, high],
        **roc_figures(truth, scores, fpr_at),
        "members": int(truth.sum()),
        "non_members": int(len(truth) - truth.sum()),
    }


def paired_difference_ci(
    a: np.ndarray, b: np.ndarray, resamples: int, confidence: float, seed: int
) -> tuple[float, float]:
    """Interval of mean(a) - mean(b) over paired resamples of the rows (0/1 outcomes)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    diff = a.astype(float) - b.astype(float)
    if not len(diff):
        return float("nan"), float("nan")
    index = rng.integers(0, len(diff), size=(resamples, len(diff)))
    means = diff[index].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)
