"""Thresholds of the poisoning screens (policy: ``gates.data_validation.screens``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

SCREENS = ("drift", "label_shift", "outliers", "duplicates")


@dataclass(frozen=True)
class PoisoningConfig:
    """Thresholds of the screens (policy: ``gates.data_validation.screens``)."""

    enabled: bool = True
    label_column: str | None = None
    exclude_columns: tuple[str, ...] = ()
    psi_threshold: float = 0.2
    psi_bins: int = 10
    ks_pvalue: float = 0.01
    ks_min_statistic: float = 0.1
    max_categories: int = 50
    label_shift_threshold: float = 0.05
    outlier_z: float = 6.0
    outlier_rate_threshold: float = 0.02
    duplicate_rate_threshold: float = 0.01
    isolation_forest: bool = False
    warn_only: tuple[str, ...] = ()
    outlier_basis: str = "reference"  # "batch": median/MAD of the batch itself (drifted data)

    def __post_init__(self) -> None:
        object.__setattr__(self, "exclude_columns", tuple(self.exclude_columns))
        object.__setattr__(self, "warn_only", tuple(self.warn_only))
        if self.psi_bins < 2:
            raise ValueError(f"psi_bins must be at least 2, got {self.psi_bins}")
        if not 0.0 < self.ks_pvalue < 1.0:
            raise ValueError(f"ks_pvalue must be in (0, 1), got {self.ks_pvalue}")
        for name in ("outlier_rate_threshold", "duplicate_rate_threshold", "ks_min_statistic"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("psi_threshold", "label_shift_threshold", "outlier_z", "max_categories"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.outlier_basis not in ("reference", "batch"):
            raise ValueError(
                f"outlier_basis must be reference or batch, got {self.outlier_basis!r}"
            )
        unknown = set(self.warn_only) - set(SCREENS)
        if unknown:
            raise ValueError(f"warn_only: unknown screen(s) {sorted(unknown)}; known: {SCREENS}")

    def with_columns(
        self, label_column: str | None = None, exclude_columns: Sequence[str] = ()
    ) -> PoisoningConfig:
        """The same thresholds with the data's label column and more columns left out."""
        exclude = tuple(dict.fromkeys((*self.exclude_columns, *exclude_columns)))
        label = label_column or self.label_column
        return replace(self, label_column=label, exclude_columns=exclude)
