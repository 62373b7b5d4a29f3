"""Policy section ``gates.explainability`` as a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass

from mlsecops_provider.core.policy import Policy, section_config

GATE = "explainability"
EXPLAINERS = ("auto", "tree", "linear", "permutation")
ACTIONS = ("warn", "fail")


@dataclass(frozen=True)
class ExplainConfig:
    """What to explain on how many rows, and the rules that judge the attributions.

    ``time_budget_seconds`` is per model: a small batch is timed first and the sample is
    scaled to fit (at least ``min_rows``, at most ``max_rows``).
    """

    explainer: str = "auto"
    time_budget_seconds: float = 20.0
    min_rows: int = 50
    max_rows: int = 10000
    calibration_rows: int = 20
    background_rows: int = 50
    seed: int = 0
    top_k: int = 5
    forbidden_features: tuple[str, ...] = ()
    forbidden_max_share: float = 0.05
    zero_share: float = 0.005
    min_rank_correlation: float = 0.5
    min_top_k_overlap: float = 0.6
    drift_action: str = "warn"
    moved_shown: int = 5
    trusted_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.explainer not in EXPLAINERS:
            raise ValueError(f"explainer: must be one of {EXPLAINERS}, got {self.explainer!r}")
        if self.drift_action not in ACTIONS:
            raise ValueError(f"drift_action: must be one of {ACTIONS}, got {self.drift_action!r}")
        if self.time_budget_seconds <= 0:
            raise ValueError("time_budget_seconds: must be positive")
        if not 1 <= self.min_rows <= self.max_rows:
            raise ValueError("min_rows/max_rows: need 1 <= min_rows <= max_rows")
        if self.calibration_rows < 1 or self.background_rows < 1 or self.top_k < 1:
            raise ValueError("calibration_rows, background_rows and top_k must be at least 1")
        for name in ("forbidden_max_share", "zero_share", "min_top_k_overlap"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: must be between 0 and 1")
        if not -1.0 <= self.min_rank_correlation <= 1.0:
            raise ValueError("min_rank_correlation: must be between -1 and 1")

    @classmethod
    def from_policy(cls, policy: Policy) -> ExplainConfig:
        return section_config(cls, policy.section(GATE), f"{policy.source}: gates.{GATE}")
