"""Policy section ``gates.fairness`` as a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlsecops_provider.core.policy import Policy, section_config

GATE = "fairness"
PRIMARY_METRICS = ("roc_auc", "accuracy", "balanced_accuracy", "f1")


@dataclass(frozen=True)
class FairnessConfig:
    """Which columns are sensitive, the group size to judge, the thresholds.

    A disparity fails only beyond its bootstrap interval when ``use_interval`` (the interval's
    lower bound above a ``max_*``, its upper bound below a ``min_*``). The candidate also fails
    when its equalized-odds difference exceeds the champion's by more than
    ``champion_tolerance`` beyond the paired interval. ``None`` disables a threshold.
    """

    sensitive_features: tuple[str, ...] = ()
    bins: dict[str, Any] = field(default_factory=dict)  # e.g. {age: [18, 40, 60, 120]}: bands
    row_key: str | None = None
    min_group_size: int = 30
    bootstrap_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    use_interval: bool = True
    max_equalized_odds_difference: float | None = 0.1
    max_demographic_parity_difference: float | None = None
    min_equalized_odds_ratio: float | None = None
    min_demographic_parity_ratio: float | None = None
    champion_tolerance: float | None = 0.02
    primary_metric: str = "roc_auc"
    positive_label: str | int | bool | None = None
    warn_on_sensitive_input: bool = True
    trusted_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.min_group_size < 1:
            raise ValueError("min_group_size: must be at least 1")
        if self.bootstrap_resamples < 50:
            raise ValueError("bootstrap_resamples: must be at least 50")
        if not 0.5 < self.confidence < 1.0:
            raise ValueError(f"confidence: must be between 0.5 and 1, got {self.confidence}")
        for column, edges in self.bins.items():
            ok = isinstance(edges, (list, tuple)) and len(edges) >= 2
            numbers = ok and all(isinstance(e, (int, float)) for e in edges)
            if not numbers or list(edges) != sorted(set(edges)):
                raise ValueError(f"bins.{column}: expected increasing numbers, got {edges!r}")
        if self.primary_metric not in PRIMARY_METRICS:
            raise ValueError(f"primary_metric: must be one of {PRIMARY_METRICS}")
        for name in (
            "max_equalized_odds_difference",
            "max_demographic_parity_difference",
            "min_equalized_odds_ratio",
            "min_demographic_parity_ratio",
            "champion_tolerance",
        ):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must be between 0 and 1 (or null), got {value}")

    @classmethod
    def from_policy(cls, policy: Policy) -> FairnessConfig:
        return section_config(cls, policy.section(GATE), f"{policy.source}: gates.{GATE}")
