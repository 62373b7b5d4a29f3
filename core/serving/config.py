"""Policy section ``gates.serving``: the limits and choices of ``mlsecops serve``."""

from __future__ import annotations

from dataclasses import dataclass

OUT_OF_PROFILE_ACTIONS = ("reject", "fallback", "allow")
FALLBACK_REASONS = ("error", "timeout")


@dataclass(frozen=True)
class ServingConfig:
    """How the server guards the champion.

    :param champion_timeout_s: a champion answer slower than this is replaced by the fallback's.
    :param fallback_on: champion failures the fallback answers (``error``, ``timeout``).
    :param out_of_profile: a request with rows outside the champion's training profile is
        ``reject`` (422), answered by the ``fallback``, or ``allow`` (counted only).
    :param profile_margin: numeric ranges are widened by this share of their width.
    :param max_categories: a text column with more distinct training values is checked by type only.
    :param require_profile: refuse to start when the champion's training data is not in lineage.
    :param max_body_bytes: larger requests get 413.
    :param max_rows: requests with more rows get 413.
    :param rate_per_second: sustained requests per second per client (token or address); 429 above.
    :param burst: requests a client may send at once before the rate applies.
    :param shadow_sample_rate: share of requests mirrored to the shadow (0..1).
    :param shadow_queue_size: mirrored requests waiting for the shadow; more are dropped.
    :param shadow_batch_max: mirrored requests the shadow scores in one batch (one message
        to its process, two predictions: the first request alone and timed, the rest together).
    :param shadow_batch_wait_s: how long the shadow's worker waits for more requests to batch.
    :param shadow_process: run the shadow in a child process at the lowest CPU priority
        (else on a thread of the server, sharing its interpreter).
    :param predict_workers: threads that run champion and fallback predictions.
    :param log_batch_rows: prediction-log rows per Parquet batch.
    :param log_flush_seconds: a partial batch is written after this long.
    :param log_columns: input columns logged as they are (never PII: checked against the
        data_validation screens' excluded columns); by default only digests are logged.
    """

    champion_timeout_s: float = 2.0
    fallback_on: tuple[str, ...] = FALLBACK_REASONS
    out_of_profile: str = "reject"
    profile_margin: float = 0.0
    max_categories: int = 50
    require_profile: bool = True
    max_body_bytes: int = 1 << 20
    max_rows: int = 10_000
    rate_per_second: float = 100.0
    burst: int = 200
    shadow_sample_rate: float = 1.0
    shadow_queue_size: int = 1000
    shadow_batch_max: int = 256
    shadow_batch_wait_s: float = 1.0
    shadow_process: bool = True
    predict_workers: int = 4
    log_batch_rows: int = 500
    log_flush_seconds: float = 5.0
    log_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.out_of_profile not in OUT_OF_PROFILE_ACTIONS:
            raise ValueError(f"out_of_profile must be one of {OUT_OF_PROFILE_ACTIONS}")
        unknown = set(self.fallback_on) - set(FALLBACK_REASONS)
        if unknown:
            raise ValueError(f"fallback_on: unknown reason(s) {sorted(unknown)}")
        if not 0.0 <= self.shadow_sample_rate <= 1.0:
            raise ValueError("shadow_sample_rate must be between 0 and 1")
        positive = {
            "champion_timeout_s": self.champion_timeout_s,
            "max_body_bytes": self.max_body_bytes,
            "max_rows": self.max_rows,
            "rate_per_second": self.rate_per_second,
            "burst": self.burst,
            "shadow_queue_size": self.shadow_queue_size,
            "shadow_batch_max": self.shadow_batch_max,
            "predict_workers": self.predict_workers,
            "log_batch_rows": self.log_batch_rows,
            "log_flush_seconds": self.log_flush_seconds,
            "max_categories": self.max_categories,
        }
        bad = [name for name, value in positive.items() if value <= 0]
        if bad:
            raise ValueError(f"{', '.join(bad)} must be positive")
        if self.profile_margin < 0:
            raise ValueError("profile_margin must not be negative")
        if not 0.0 <= self.shadow_batch_wait_s <= 5.0:
            raise ValueError("shadow_batch_wait_s must be between 0 and 5 seconds")
