"""Policy sections ``gates.privacy_risk``, ``gates.adversarial`` and ``gates.backdoor_scan``.

Budgets (rows, seconds, evaluations) keep the three gates together around a minute on the
demo data on a small shared machine; raise them for a release candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

PRIVACY_GATE = "privacy_risk"
ADVERSARIAL_GATE = "adversarial"
BACKDOOR_GATE = "backdoor_scan"
ATTACK_MODELS = ("rf", "gb", "lr", "dt", "knn")
BLACK_BOX_ATTACKS = ("hopskipjump", "zoo", "boundary")


def _share(name: str, value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: must be between 0 and 1, got {value}")


@dataclass(frozen=True)
class PrivacyConfig:
    """Membership inference: ART's black-box attack model and a loss-threshold attack.

    Members (training rows) and non-members (holdout rows) are balanced and split in halves:
    the attack model trains on one half and every figure is measured on the other.
    """

    attack_model: str = "rf"
    max_rows: int = 2000  # per group, sampled
    min_rows: int = 40  # per group, below that the attack cannot decide
    bootstrap_resamples: int = 500
    confidence: float = 0.95
    seed: int = 0
    low_fpr: float = 0.01
    max_auc_lower: float | None = 0.6  # fail when the AUC interval's lower bound is above
    max_tpr_at_low_fpr: float | None = 0.05
    max_auc_increase: float | None = 0.05  # candidate AUC - champion AUC (same rows)

    def __post_init__(self) -> None:
        if self.attack_model not in ATTACK_MODELS:
            raise ValueError(f"attack_model: must be one of {ATTACK_MODELS}")
        if self.min_rows < 10 or self.max_rows < self.min_rows:
            raise ValueError("min_rows must be at least 10 and max_rows at least min_rows")
        if self.bootstrap_resamples < 50:
            raise ValueError("bootstrap_resamples: must be at least 50")
        if not 0.5 < self.confidence < 1.0:
            raise ValueError(f"confidence: must be between 0.5 and 1, got {self.confidence}")
        for name in ("low_fpr", "max_auc_lower", "max_tpr_at_low_fpr", "max_auc_increase"):
            _share(name, getattr(self, name))


@dataclass(frozen=True)
class AdversarialConfig:
    """Evasion: a black-box ART attack, a transfer attack (PGD on a surrogate), tree attacks.

    ``epsilon`` is an L-inf budget in min-max-scaled feature units. The black-box attack runs
    on as many sampled rows as fit in ``time_budget_seconds`` (both models on the same rows,
    at least ``min_black_box_rows``); the transfer attack on ``transfer_rows``.
    """

    epsilon: float = 0.1
    black_box_attack: str = "hopskipjump"
    transfer_rows: int = 500
    time_budget_seconds: float = 15.0
    min_black_box_rows: int = 6
    max_black_box_rows: int = 200
    chunk_rows: int = 3
    max_iter: int = 5  # HopSkipJump iterations / ZOO / Boundary steps
    max_eval: int = 100  # HopSkipJump evaluations for one gradient estimate
    pgd_steps: int = 20
    seed: int = 0
    bootstrap_resamples: int = 500
    confidence: float = 0.95
    tolerance: float = 0.05  # candidate adversarial accuracy may trail the champion's by this
    required: tuple[str, ...] = ("black_box", "transfer")
    min_adversarial_accuracy: float | None = None  # opt-in absolute limit
    max_fooling_rate: float | None = None  # opt-in absolute limit
    features: tuple[str, ...] | None = None  # only these numeric features move (None: all)

    def __post_init__(self) -> None:
        if not 0.0 < self.epsilon <= 1.0:
            raise ValueError(
                f"epsilon: must be in (0, 1] (share of a feature's range), got {self.epsilon}"
            )
        if self.black_box_attack not in BLACK_BOX_ATTACKS:
            raise ValueError(f"black_box_attack: must be one of {BLACK_BOX_ATTACKS}")
        if self.time_budget_seconds <= 0 or self.transfer_rows < 1 or self.chunk_rows < 1:
            raise ValueError("time_budget_seconds, transfer_rows and chunk_rows must be positive")
        if not 1 <= self.min_black_box_rows <= self.max_black_box_rows:
            raise ValueError("need 1 <= min_black_box_rows <= max_black_box_rows")
        if self.max_iter < 1 or self.max_eval < 10 or self.pgd_steps < 1:
            raise ValueError("max_iter and pgd_steps must be at least 1, max_eval at least 10")
        unknown = set(self.required) - {"black_box", "transfer", "decision_tree"}
        if unknown:
            raise ValueError(f"required: unknown attack(s) {sorted(unknown)}")
        for name in ("tolerance", "min_adversarial_accuracy", "max_fooling_rate"):
            _share(name, getattr(self, name))


@dataclass(frozen=True)
class BackdoorConfig:
    """Trigger search: 1-3 features set to values in (or at the edge of) their range."""

    max_features: int = 3
    rows_per_class: int = 200  # rows of the other classes the trigger is tried on
    quantiles: tuple[float, ...] = (0.05, 0.5, 0.95)
    frequent_values: int = 3  # per feature, the most repeated exact values are tried too
    beam: int = 12
    max_evaluations: int = 300_000  # predicted rows, over the whole search
    time_budget_seconds: float = 30.0
    success_rate: float = 0.8  # a trigger at or above this is reported
    explained_margin: float = 0.3  # the reference reaching success - margin explains it
    reference: str = "refit"  # refit | champion | none
    min_carrying_rows: int = 5  # a refit pattern from fewer rows is label noise, not a plant
    max_carrying_share: float = 0.2  # carried by more of the rows: the data's own pattern
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.max_features <= 3:
            raise ValueError("max_features: must be 1, 2 or 3")
        if self.rows_per_class < 10 or self.beam < 2 or self.max_evaluations < 1000:
            raise ValueError("rows_per_class >= 10, beam >= 2, max_evaluations >= 1000")
        if self.time_budget_seconds <= 0 or self.min_carrying_rows < 1:
            raise ValueError("time_budget_seconds and min_carrying_rows must be positive")
        if any(not 0.0 < q < 1.0 for q in self.quantiles):
            raise ValueError("quantiles: each must be strictly between 0 and 1")
        if self.reference not in ("refit", "champion", "none"):
            raise ValueError("reference: must be refit, champion or none")
        for name in ("success_rate", "explained_margin", "max_carrying_share"):
            _share(name, getattr(self, name))
