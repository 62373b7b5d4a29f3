"""Robustness under small bounded perturbations of numeric features, candidate vs champion.

Feature ``j`` may move by at most ``epsilon × std_j`` (an L∞ box, clipped to the feature's
observed range). Two black-box attacks run on the same sample of rows for both models:
a random search (uniform points and random corners of the box) and a greedy coordinate sign
search that starts from the best random point and, for a few sweeps, moves the single
feature to the box corner that most lowers the model's margin on the true class
(classification) or most shifts its prediction (regression).

The *fooling rate* is the share of rows the model got right that the attack makes wrong
(classification) or the share of rows whose prediction moves by more than
``tolerance × std(label)`` (regression); accuracy under attack counts the fooled rows as wrong.

Why this search stays here next to the ART attacks of :mod:`mlsecops_provider.core.attacks`
(the ``adversarial`` gate, which runs in the DAG on the same holdout, candidate against
champion): it covers regression models, which ART's evasion attacks (classifiers only) do
not, and it is cheap enough to screen every sampled row inside the shadow evaluation
(hundreds of rows in about a second), where ART's HopSkipJump on an sklearn pipeline costs
one to four seconds per row on this machine. Its epsilon is in standard deviations; the
adversarial gate's is in min-max-scaled units.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.shadow.stats import CLASSIFICATION, Predictions

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)
Predictor = Callable[["pd.DataFrame"], Predictions]


@dataclass(frozen=True)
class RobustnessConfig:
    """Policy ``gates.shadow_evaluation.robustness``; the ``max_*`` limits are optional."""

    enabled: bool = True
    epsilon: float = 0.1
    samples: int = 200
    random_trials: int = 16
    search_iterations: int = 3
    features: tuple[str, ...] | None = None
    max_fooling_rate: float | None = None
    max_accuracy_drop: float | None = None
    max_fooling_rate_increase: float | None = None

    def __post_init__(self) -> None:
        if not self.epsilon > 0:
            raise ValueError(f"epsilon: must be above 0, got {self.epsilon}")
        if self.samples < 1 or self.random_trials < 0 or self.search_iterations < 0:
            raise ValueError("samples must be at least 1, random_trials and search_iterations >= 0")
        for name in ("max_fooling_rate", "max_accuracy_drop", "max_fooling_rate_increase"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must be between 0 and 1, got {value}")


@dataclass(frozen=True)
class Box:
    """The perturbation box of each sampled row."""

    columns: tuple[str, ...]
    base: np.ndarray  # (rows, features) original values
    bound: np.ndarray  # (features,) epsilon × std
    low: np.ndarray
    high: np.ndarray


def perturbation_box(frame: pd.DataFrame, rows: np.ndarray, columns: list[str], eps: float) -> Box:
    import numpy as np

    values = frame[columns].to_numpy(dtype=np.float64)
    std = np.nanstd(values, axis=0)
    keep = std > 0
    kept = tuple(c for c, k in zip(columns, keep, strict=True) if k)
    values = values[:, keep]
    return Box(
        kept,
        values[rows],
        eps * std[keep],
        np.nanmin(values, axis=0),
        np.nanmax(values, axis=0),
    )


@dataclass(frozen=True)
class AttackResult:
    rows: int
    eligible: int
    fooling_rate: float
    random_fooling_rate: float
    clean_score: float  # accuracy (classification) or RMSE (regression) on the sample
    attacked_score: float
    evaluations: int

    def to_dict(self, task: str) -> dict[str, Any]:
        data = asdict(self)
        name = "accuracy" if task == CLASSIFICATION else "rmse"
        data[f"clean_{name}"] = data.pop("clean_score")
        data[f"attacked_{name}"] = data.pop("attacked_score")
        if task == CLASSIFICATION:
            data["accuracy_drop"] = self.clean_score - self.attacked_score
        return data


class _Attack:
    """Both searches against one model; ``threshold`` is the regression shift that fools."""

    def __init__(
        self, predict: Predictor, sample: pd.DataFrame, box: Box, y: np.ndarray, task: str,
        threshold: float,
    ) -> None:  # fmt: skip
        self.predict, self.sample, self.box, self.y = predict, sample, box, y
        self.task, self.threshold, self.evaluations = task, threshold, 0
        self.original = predict(sample)
        if task == CLASSIFICATION:
            self.eligible = self.original.labels == y
        else:
            self.eligible = self.y == self.y

    def evaluate(self, ids: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
        """Objective (lower is worse for the model), fooled flags and predicted values."""
        import numpy as np

        frame = self.sample.iloc[ids].reset_index(drop=True)
        for j, column in enumerate(self.box.columns):
            dtype = self.sample[column].dtype
            integral = dtype.kind in "iu"  # integer features stay integers (schemas, meaning)
            frame[column] = np.rint(points[:, j]).astype(dtype) if integral else points[:, j]
        pred = self.predict(frame)
        self.evaluations += len(ids)
        if self.task == CLASSIFICATION:
            sign = np.where(self.y[ids] == 1, 1.0, -1.0)
            objective = (pred.scores - 0.5) * sign
            fooled = self.eligible[ids] & (pred.labels != self.y[ids])
        else:
            shift = np.abs(pred.labels - self.original.labels[ids])
            objective, fooled = -shift, shift > self.threshold
        return objective, fooled, pred.labels

    def run(self, rng: np.random.Generator, trials: int, sweeps: int) -> AttackResult:
        import numpy as np

        rows = len(self.y)
        ids = np.arange(rows)
        best, fooled, values = self.evaluate(ids, self.box.base)
        points = self.box.base.copy()
        if trials:
            best, fooled, values, points = self._random(rng, trials, best, fooled, values, points)
        random_fooled = fooled.copy()
        for _ in range(sweeps):
            active = np.flatnonzero(self.eligible & ~fooled)
            if not len(active):
                break
            best, fooled, values, points = self._sweep(active, best, fooled, values, points)
        return self._result(random_fooled, fooled, values)

    def _random(self, rng: np.random.Generator, trials: int, *state: Any) -> tuple[Any, ...]:
        import numpy as np

        best, fooled, values, points = state
        rows, width = self.box.base.shape
        ids = np.repeat(np.arange(rows), trials)
        step = rng.uniform(-1.0, 1.0, (len(ids), width))
        corners = np.tile(np.arange(trials) % 2 == 1, rows)
        step[corners] = np.sign(step[corners])
        tried = np.clip(self.box.base[ids] + step * self.box.bound, self.box.low, self.box.high)
        objective, hit, predicted = self.evaluate(ids, tried)
        objective = objective.reshape(rows, trials)
        pick = np.argmin(objective, axis=1)
        better = objective[np.arange(rows), pick] < best
        chosen = np.arange(rows) * trials + pick
        best = np.where(better, objective[np.arange(rows), pick], best)
        values = np.where(better, predicted[chosen], values)
        points[better] = tried[chosen[better]]
        return best, fooled | hit.reshape(rows, trials).any(axis=1), values, points

    def _sweep(self, active: np.ndarray, *state: Any) -> tuple[Any, ...]:
        import numpy as np

        best, fooled, values, points = state
        width = len(self.box.columns)
        ids = np.repeat(active, 2 * width)
        tried = points[ids].copy()
        feature = np.tile(np.repeat(np.arange(width), 2), len(active))
        sign = np.tile([1.0, -1.0], width * len(active))
        moved = self.box.base[ids, feature] + sign * self.box.bound[feature]
        tried[np.arange(len(ids)), feature] = moved
        tried = np.clip(tried, self.box.low, self.box.high)
        objective, hit, predicted = self.evaluate(ids, tried)
        objective = objective.reshape(len(active), 2 * width)
        pick = np.argmin(objective, axis=1)
        chosen = np.arange(len(active)) * 2 * width + pick
        better = objective[np.arange(len(active)), pick] < best[active]
        rows = active[better]
        best[rows] = objective[np.arange(len(active)), pick][better]
        values[rows] = predicted[chosen[better]]
        points[rows] = tried[chosen[better]]
        fooled[active] |= hit.reshape(len(active), 2 * width).any(axis=1)
        return best, fooled, values, points

    def _result(self, random_fooled: Any, fooled: Any, values: Any) -> AttackResult:
        import numpy as np

        eligible = int(self.eligible.sum())
        rate = float(fooled.sum() / eligible) if eligible else 0.0
        random_rate = float(random_fooled.sum() / eligible) if eligible else 0.0
        if self.task == CLASSIFICATION:
            clean = float(self.eligible.mean())
            attacked = float((self.eligible & ~fooled).mean())
        else:
            clean = float(np.sqrt(np.mean((self.original.labels - self.y) ** 2)))
            attacked = float(np.sqrt(np.mean((values - self.y) ** 2)))
        return AttackResult(
            len(self.y), eligible, rate, random_rate, clean, attacked, self.evaluations
        )


def compare_robustness(
    models: dict[str, Predictor],
    frame: pd.DataFrame,
    y: np.ndarray,
    task: str,
    columns: list[str],
    config: RobustnessConfig,
    seed: int,
    tolerance: float,
) -> dict[str, Any]:
    """Attack every model on the same sampled rows; ``frame`` holds all model inputs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(frame), size=min(config.samples, len(frame)), replace=False))
    box = perturbation_box(frame, rows, columns, config.epsilon)
    report: dict[str, Any] = {"epsilon": config.epsilon, "features": list(box.columns)}
    if not box.columns:
        return {**report, "skipped": "no numeric feature with a spread to perturb"}
    sample = frame.iloc[rows].reset_index(drop=True)
    threshold = tolerance * float(np.std(y))
    for name, predict in models.items():
        attack = _Attack(predict, sample, box, y[rows], task, threshold)
        result = attack.run(np.random.default_rng(seed + 1), config.random_trials,
                            config.search_iterations)  # fmt: skip
        report[name] = result.to_dict(task)
        log.info("robustness of %s: %s", name, report[name])
    return report


def robustness_findings(
    report: dict[str, Any], config: RobustnessConfig, task: str
) -> list[dict[str, Any]]:
    """One finding per limit of the policy that the candidate exceeds."""
    candidate, champion = report.get("candidate"), report.get("champion")
    if candidate is None:
        return []
    checks = [("fooling_rate", config.max_fooling_rate, candidate["fooling_rate"])]
    if task == CLASSIFICATION:
        checks.append(("accuracy_drop", config.max_accuracy_drop, candidate["accuracy_drop"]))
    if champion is not None:
        increase = candidate["fooling_rate"] - champion["fooling_rate"]
        checks.append(("fooling_rate_increase", config.max_fooling_rate_increase, increase))
    return [
        {
            "kind": "robustness",
            "metric": f"robustness.{name}",
            "check": f"max_{name}",
            "observed": observed,
            "bound": limit,
            "message": f"robustness {name} {observed:.4f} above max_{name} {limit} "
            f"(epsilon {config.epsilon} x std)",
        }
        for name, limit, observed in checks
        if limit is not None and observed > limit
    ]
