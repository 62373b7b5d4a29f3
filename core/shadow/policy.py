"""Policy section ``gates.shadow_evaluation`` and what its thresholds mean.

A threshold names a metric and any of: value bounds on the candidate (``lower``/``upper``),
a change against the champion, a slice. A change has a direction (``higher_is_better`` or
``lower_is_better``; default: the metric's own), a ``measure`` (``absolute``: candidate −
champion, or ``relative``: that divided by |champion|), a tolerated regression
(``tolerance``, ≥ 0) and an optional cap on an improvement (``max_improvement``: a jump that
large is worth a reviewer's look, so it *warns* with the reason; ``block_improvement: true``
makes it fail). With ``use_interval`` the paired bootstrap interval decides: a regression
fails only when the whole interval is worse than ``-tolerance``, a jump is flagged only when
the whole interval is above the cap. A slice is ``{column, value}``; without ``value`` the
threshold applies to every value of the column, each slice on its own.

Without ``thresholds`` the default rule applies: the primary metric (roc_auc for classifiers,
rmse for regressors) must not be worse than the champion's beyond the bootstrap interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mlsecops_provider.core.errors import PolicyError
from mlsecops_provider.core.policy import Policy, section_config
from mlsecops_provider.core.shadow.robustness import RobustnessConfig
from mlsecops_provider.core.shadow.stats import (
    CLASSIFICATION,
    CLASSIFICATION_METRICS,
    HIGHER_IS_BETTER,
    REGRESSION,
    REGRESSION_METRICS,
)

GATE = "shadow_evaluation"
TASKS = ("auto", CLASSIFICATION, REGRESSION)
DIRECTIONS = ("higher_is_better", "lower_is_better")
MEASURES = ("absolute", "relative")
COST_METRICS = ("latency_us_per_row", "model_size_bytes")  # no interval, no slice
PAIR_METRICS = ("disagreement_rate", "score_psi")  # value bounds only
KNOWN_METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS + COST_METRICS + PAIR_METRICS
DEFAULT_PRIMARY = {CLASSIFICATION: "roc_auc", REGRESSION: "rmse"}


def higher_is_better(metric: str) -> bool:
    return metric in HIGHER_IS_BETTER


@dataclass(frozen=True)
class SliceSpec:
    """Rows whose ``column`` equals ``value`` (None: one slice per value of the column)."""

    column: str
    value: str | int | float | bool | None = None

    def label(self, value: Any = None) -> str:
        shown = self.value if value is None else value
        return f"{self.column}={'*' if shown is None else shown}"


@dataclass(frozen=True)
class ChangeSpec:
    """A change of the candidate against the champion."""

    direction: str | None = None
    measure: str = "absolute"
    tolerance: float = 0.0
    max_improvement: float | None = None
    use_interval: bool = False
    block_improvement: bool = False  # True: a jump above max_improvement fails, not warns

    def __post_init__(self) -> None:
        if isinstance(self.direction, str):  # TFMA spells it HIGHER_IS_BETTER
            object.__setattr__(self, "direction", self.direction.lower())
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise ValueError(f"direction: must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.measure not in MEASURES:
            raise ValueError(f"measure: must be one of {MEASURES}, got {self.measure!r}")
        if self.tolerance < 0:
            raise ValueError(
                f"tolerance: must be >= 0 (a tolerated regression), got {self.tolerance}"
            )
        if self.max_improvement is not None and self.max_improvement <= 0:
            raise ValueError(f"max_improvement: must be above 0, got {self.max_improvement}")

    def higher_is_better(self, metric: str) -> bool:
        return (
            higher_is_better(metric) if self.direction is None else self.direction == DIRECTIONS[0]
        )


@dataclass(frozen=True)
class Threshold:
    """One entry of ``thresholds``."""

    metric: str
    lower: float | None = None
    upper: float | None = None
    change: ChangeSpec | None = None
    slice: SliceSpec | None = None

    def __post_init__(self) -> None:
        if self.metric not in KNOWN_METRICS:
            raise ValueError(f"metric: unknown metric {self.metric!r} (known: {KNOWN_METRICS})")
        if self.lower is None and self.upper is None and self.change is None:
            raise ValueError("needs at least one of lower, upper, change")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"lower {self.lower} is above upper {self.upper}")
        if self.metric in PAIR_METRICS and self.change is not None:
            raise ValueError(f"{self.metric} compares the two models: value bounds only")
        if self.metric in PAIR_METRICS + COST_METRICS and self.slice is not None:
            raise ValueError(f"{self.metric} is measured on all rows: no slice")

    @classmethod
    def parse(cls, raw: Any, where: str) -> Threshold:
        if isinstance(raw, cls):
            return raw
        if not isinstance(raw, Mapping):
            raise PolicyError(f"{where}: must be a mapping, got {type(raw).__name__}")
        where = f"{where} ({raw.get('metric', '<no metric>')})"
        data = dict(raw)
        for key, kind in (("change", ChangeSpec), ("slice", SliceSpec)):
            if data.get(key) is not None:
                if not isinstance(data[key], Mapping):
                    raise PolicyError(f"{where}.{key}: must be a mapping")
                data[key] = section_config(kind, data[key], f"{where}.{key}")
        if "metric" not in data:
            raise PolicyError(f"{where}: metric: missing")
        return section_config(cls, data, where)

    def describe(self, slice_value: Any = None) -> str:
        return self.metric + (f" [{self.slice.label(slice_value)}]" if self.slice else "")


@dataclass(frozen=True)
class ShadowConfig:
    """Policy section ``gates.shadow_evaluation``."""

    task: str = "auto"
    primary_metric: str | None = None
    positive_label: str | int | bool | None = None
    bootstrap_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    thresholds: tuple[Threshold, ...] | None = None
    mcnemar_alpha: float | None = None
    regression_tolerance: float = 0.1
    latency_rows: int = 1000
    max_slices: int = 50
    trusted_types: tuple[str, ...] = ()
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task: must be one of {TASKS}, got {self.task!r}")
        known = CLASSIFICATION_METRICS + REGRESSION_METRICS
        if self.primary_metric is not None and self.primary_metric not in known:
            raise ValueError(f"primary_metric: unknown metric {self.primary_metric!r}")
        if self.bootstrap_resamples < 50:
            raise ValueError(
                f"bootstrap_resamples: must be at least 50, got {self.bootstrap_resamples}"
            )
        if not 0.5 < self.confidence < 1.0:
            raise ValueError(f"confidence: must be between 0.5 and 1, got {self.confidence}")
        if self.mcnemar_alpha is not None and not 0.0 < self.mcnemar_alpha < 1.0:
            raise ValueError(f"mcnemar_alpha: must be between 0 and 1, got {self.mcnemar_alpha}")
        if self.latency_rows < 1 or self.max_slices < 1 or self.regression_tolerance <= 0:
            raise ValueError("latency_rows, max_slices and regression_tolerance must be positive")
        if self.thresholds is not None:
            parsed = tuple(
                Threshold.parse(t, f"thresholds[{i}]") for i, t in enumerate(self.thresholds)
            )
            object.__setattr__(self, "thresholds", parsed)
        if isinstance(self.robustness, Mapping):
            robustness = section_config(RobustnessConfig, self.robustness, "robustness")
            object.__setattr__(self, "robustness", robustness)

    @classmethod
    def from_policy(cls, policy: Policy) -> ShadowConfig:
        return cls.from_section(policy.section(GATE), f"{policy.source}: gates.{GATE}")

    @classmethod
    def from_section(cls, section: Mapping[str, Any], where: str) -> ShadowConfig:
        data = dict(section)
        robustness = data.pop("robustness", None) or {}
        if not isinstance(robustness, Mapping):
            raise PolicyError(f"{where}.robustness: must be a mapping")
        thresholds = data.pop("thresholds", None)
        if thresholds is not None and not isinstance(thresholds, list | tuple):
            raise PolicyError(f"{where}.thresholds: must be a list")
        base = section_config(cls, data, where)
        parsed = (
            None
            if thresholds is None
            else tuple(
                Threshold.parse(t, f"{where}.thresholds[{i}]") for i, t in enumerate(thresholds)
            )
        )
        rob = section_config(RobustnessConfig, robustness, f"{where}.robustness")
        return replace(base, thresholds=parsed, robustness=rob)

    def primary(self, task: str) -> str:
        return self.primary_metric or DEFAULT_PRIMARY[task]

    def effective_thresholds(self, task: str) -> tuple[Threshold, ...]:
        """The policy's thresholds, checked against the task, or the default rule."""
        if self.thresholds is None:
            primary = self.primary(task)
            self._check_metric(primary, task, "primary_metric")
            return (Threshold(primary, change=ChangeSpec(use_interval=True)),)
        for i, threshold in enumerate(self.thresholds):
            self._check_metric(threshold.metric, task, f"thresholds[{i}] ({threshold.metric})")
        return self.thresholds

    @staticmethod
    def _check_metric(metric: str, task: str, where: str) -> None:
        own = CLASSIFICATION_METRICS if task == CLASSIFICATION else REGRESSION_METRICS
        other = REGRESSION_METRICS if task == CLASSIFICATION else CLASSIFICATION_METRICS
        if metric in other or metric not in own + COST_METRICS + PAIR_METRICS:
            raise PolicyError(f"gates.{GATE}.{where}: {metric!r} is not a metric of a {task} model")


@dataclass(frozen=True)
class Estimate:
    """A metric of the candidate, the champion's, their change and the bootstrap intervals."""

    candidate: float
    champion: float | None = None
    candidate_ci: tuple[float, float] | None = None
    champion_ci: tuple[float, float] | None = None
    delta: float | None = None  # candidate − champion
    delta_ci: tuple[float, float] | None = None
    relative: float | None = None  # delta / |champion|
    relative_ci: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def check_threshold(
    threshold: Threshold, label: str, est: Estimate | None, compared: bool, confidence: float
) -> dict[str, Any]:
    """Every check of one threshold on one slice: ``{threshold, status, checks}``."""
    checks: list[dict[str, Any]] = []
    if est is None:
        checks.append(_failed("rows", None, None, f"{label}: the slice has no rows to evaluate"))
    else:
        for bound, kind in ((threshold.lower, "lower"), (threshold.upper, "upper")):
            if bound is not None:
                checks.append(_bound_check(label, kind, est.candidate, bound))
        if threshold.change is not None:
            if compared:
                checks.extend(_change_checks(threshold, label, est, confidence))
            else:
                checks.append({"check": "change", "status": "skipped", "message": "no champion"})
    statuses = {c["status"] for c in checks}
    status = next((s for s in ("fail", "warn", "pass") if s in statuses), "skipped")
    return {"threshold": label, "metric": threshold.metric, "status": status, "checks": checks}


def _failed(check: str, observed: Any, bound: Any, message: str) -> dict[str, Any]:
    return {
        "check": check,
        "status": "fail",
        "observed": observed,
        "bound": bound,
        "message": message,
    }


def _bound_check(label: str, kind: str, value: float, bound: float) -> dict[str, Any]:
    ok = value >= bound if kind == "lower" else value <= bound
    word = "below lower" if kind == "lower" else "above upper"
    if ok:  # NaN compares false: an undefined metric fails (fail closed)
        return {"check": kind, "status": "pass", "observed": value, "bound": bound}
    return _failed(kind, value, bound, f"{label} = {value:.4f} {word} bound {bound}")


def _change_checks(
    threshold: Threshold, label: str, est: Estimate, confidence: float
) -> list[dict[str, Any]]:
    change = threshold.change
    assert change is not None
    relative = change.measure == "relative"
    point, ci = (est.relative, est.relative_ci) if relative else (est.delta, est.delta_ci)
    sign = 1.0 if change.higher_is_better(threshold.metric) else -1.0
    if point is None or point != point:
        return [_failed("change", point, None, f"{label}: change against the champion undefined")]
    if change.use_interval and ci is None and threshold.metric not in COST_METRICS:
        return [_failed("change", point, None, f"{label}: no bootstrap interval (too few rows)")]
    interval = None if ci is None else sorted((sign * ci[0], sign * ci[1]))
    use_ci = change.use_interval and interval is not None
    shown = f"change {point:+.4f} ({change.measure}"
    if ci is not None:
        shown += f", {confidence:.0%} CI [{ci[0]:+.4f}, {ci[1]:+.4f}]"
    shown += ")"
    best = interval[1] if use_ci and interval else sign * point
    checks = [
        {"check": "regression", "status": "pass", "observed": point, "bound": -change.tolerance}
        if best >= -change.tolerance
        else _failed(
            "regression",
            point,
            -change.tolerance,
            f"{label} is worse than the champion: {shown}, tolerance {change.tolerance}",
        )
    ]
    if change.max_improvement is not None:
        least = interval[0] if use_ci and interval else sign * point
        checks.append(
            {"check": "max_improvement", "status": "pass", "observed": point}
            if least <= change.max_improvement
            else _improvement_flag(label, shown, point, change)
        )
    return checks


def _improvement_flag(label: str, shown: str, point: float, change: ChangeSpec) -> dict[str, Any]:
    """A jump above ``max_improvement``: a warning for reviewers, a failure if the policy says."""
    flagged = _failed(
        "max_improvement",
        point,
        change.max_improvement,
        f"{label} improved suspiciously: {shown} above max_improvement "
        f"{change.max_improvement}" + ("" if change.block_improvement else " (review it)"),
    )
    return flagged if change.block_improvement else {**flagged, "status": "warn"}
