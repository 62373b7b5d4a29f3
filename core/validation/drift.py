"""Drift of recent production data against the champion model's training data.

The statistics are the validation gate's drift screen (:func:`poisoning.drift_screen`: PSI
per column, KS for numeric columns) with the same thresholds: the policy's
``gates.data_validation.screens``, overridden by ``gates.drift.screens``. Drift *fires*
when at least ``gates.drift.min_drifted_columns`` columns drifted; a column of the
reference missing from the current data counts as drifted (fail closed).

The reference is found through MLflow lineage: the champion alias's model version, its
run, that run's dataset input with context ``training`` and its ``mlsecops.uri`` and
``mlsecops.sha256`` tags. It is read with digest verification.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError, LineageError, MLSecOpsError, PolicyError
from mlsecops_provider.core.policy import Policy, section_config
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.datasets import dataset_inputs
from mlsecops_provider.core.tracking.lineage import TAG_CONTEXT, TAG_SHA256, TAG_URI
from mlsecops_provider.core.tracking.registry import CHAMPION
from mlsecops_provider.core.validation.poisoning import PoisoningConfig, drift_screen

if TYPE_CHECKING:
    import pandas as pd

    from mlsecops_provider.core.storage import S3ClientFactory

log = logging.getLogger(__name__)
GATE = "drift"
VALIDATION_GATE = "data_validation"
MAX_SUMMARY_COLUMNS = 20


@dataclass(frozen=True)
class DriftConfig:
    """Policy section ``gates.drift``: ``min_drifted_columns`` and ``screens`` overrides."""

    statistics: PoisoningConfig = field(default_factory=PoisoningConfig)
    min_drifted_columns: int = 1

    def __post_init__(self) -> None:
        if self.min_drifted_columns < 1:
            raise ValueError(
                f"min_drifted_columns must be at least 1, got {self.min_drifted_columns}"
            )

    @classmethod
    def from_policy(cls, policy: Policy) -> DriftConfig:
        where = f"{policy.source}: gates.{GATE}"
        section = dict(policy.section(GATE))
        base = policy.section(VALIDATION_GATE).get("screens") or {}
        overrides = section.pop("screens", None) or {}
        for name, value in (("data_validation.screens", base), (f"{GATE}.screens", overrides)):
            if not isinstance(value, Mapping):
                raise PolicyError(f"{policy.source}: gates.{name}: must be a mapping")
        if "statistics" in section:
            raise PolicyError(f"{where}: unknown field(s) ['statistics'] (use 'screens')")
        config = section_config(cls, section, where)
        statistics = section_config(PoisoningConfig, {**base, **overrides}, f"{where}.screens")
        return replace(config, statistics=statistics)

    def with_columns(
        self, label_column: str | None = None, exclude_columns: tuple[str, ...] = ()
    ) -> DriftConfig:
        """The same thresholds with a label column and more columns left out of the screen."""
        stats = self.statistics
        exclude = tuple(dict.fromkeys((*stats.exclude_columns, *exclude_columns)))
        stats = replace(
            stats, label_column=label_column or stats.label_column, exclude_columns=exclude
        )
        return replace(self, statistics=stats)


@dataclass(frozen=True)
class DriftReport:
    """The drift decision, which columns drifted, and every column's figures."""

    drifted: bool
    drifted_columns: tuple[str, ...]
    missing_columns: tuple[str, ...]
    max_psi: float | None
    columns_screened: int
    min_drifted_columns: int
    columns: Mapping[str, Any] = field(default_factory=dict)
    skipped_columns: Mapping[str, str] = field(default_factory=dict)
    reference: Mapping[str, Any] = field(default_factory=dict)
    current: Mapping[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Compact, JSON-safe: for XCom and logs (figures only for drifted columns)."""
        shown = self.drifted_columns[:MAX_SUMMARY_COLUMNS]
        return {
            "drifted": self.drifted,
            "drifted_columns": list(self.drifted_columns),
            "missing_columns": list(self.missing_columns),
            "max_psi": self.max_psi,
            "columns_screened": self.columns_screened,
            "min_drifted_columns": self.min_drifted_columns,
            "psi": {c: self.columns[c].get("psi") for c in shown if c in self.columns},
            "reference": dict(self.reference),
            "current": dict(self.current),
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["drifted_columns"] = list(self.drifted_columns)
        data["missing_columns"] = list(self.missing_columns)
        return data


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig | None = None,
    *,
    reference_ref: Mapping[str, Any] | None = None,
    current_ref: Mapping[str, Any] | None = None,
) -> DriftReport:
    """Screen ``current`` against ``reference`` and decide whether drift passes the policy."""
    config = config or DriftConfig()
    if len(reference) == 0 or len(current) == 0:
        raise DataError("drift: the reference and the current data must both have rows")
    try:
        screen = drift_screen(current, reference, config.statistics)
    except (TypeError, ValueError) as err:  # e.g. unhashable cells in an object column
        raise DataError(f"drift: cannot compare the datasets ({err})") from err
    if screen.status not in ("pass", "fail"):
        raise DataError(f"drift: the screen did not run ({screen.status}: {screen.reason})")
    columns = dict(screen.metrics.get("columns", {}))
    drifted = tuple(c for c, figures in columns.items() if figures.get("drifted"))
    missing = tuple(
        str(f["column"]) for f in screen.findings if f.get("reason") and f.get("column") is not None
    )
    count = len(drifted) + len(missing)
    return DriftReport(
        drifted=count >= config.min_drifted_columns,
        drifted_columns=drifted,
        missing_columns=missing,
        max_psi=screen.metrics.get("max_psi"),
        columns_screened=int(screen.metrics.get("columns_screened", len(columns))),
        min_drifted_columns=config.min_drifted_columns,
        columns=columns,
        skipped_columns=dict(screen.metrics.get("skipped_columns", {})),
        reference=dict(reference_ref or {}),
        current=dict(current_ref or {}),
    )


@dataclass(frozen=True)
class TrainingReference:
    """The dataset a registered model version was trained on, found through lineage."""

    model_name: str
    version: str
    mlflow_run_id: str
    uri: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def champion_training_reference(
    settings: Settings, model_name: str, alias: str = CHAMPION
) -> TrainingReference:
    """The champion's training dataset: alias -> version -> run -> ``training`` input."""
    from mlflow import MlflowClient

    from mlsecops_provider.core.tracking.lineage import check_tracking_reachable
    from mlsecops_provider.core.tracking.registry import alias_version

    check_tracking_reachable(settings.tracking_uri)
    try:
        client = MlflowClient(settings.tracking_uri, settings.registry_uri)
        version = alias_version(client, model_name, alias)
        if version is None:
            raise LineageError(
                f"model {model_name!r} has no {alias!r} alias: no training data to compare with"
            )
        run_id = client.get_model_version(model_name, version).run_id
        inputs = dataset_inputs(client.get_run(run_id)) if run_id else []
    except MLSecOpsError:
        raise
    except Exception as err:  # MLflow raises many types for an unusable store
        raise LineageError(
            f"cannot read the lineage of {model_name}@{alias} from MLflow at "
            f"{settings.tracking_uri} ({type(err).__name__}: {err})"
        ) from err
    for tags in inputs:
        if tags.get(TAG_CONTEXT) == "training" and tags.get(TAG_URI) and tags.get(TAG_SHA256):
            return TrainingReference(
                model_name, version, str(run_id), tags[TAG_URI], tags[TAG_SHA256]
            )
    raise LineageError(
        f"{model_name} version {version} (run {run_id or 'none'}) has no training dataset "
        f"with {TAG_URI} and {TAG_SHA256} tags in MLflow"
    )


def drift_against_champion(
    settings: Settings,
    model_name: str,
    current_uri: str,
    config: DriftConfig,
    *,
    current_sha256: str | None = None,
    s3_client_factory: S3ClientFactory | None = None,
    alias: str = CHAMPION,
) -> DriftReport:
    """Read the champion's training data (digest verified) and the current data; compare."""
    from mlsecops_provider.core.data.datasets import read_table

    reference = champion_training_reference(settings, model_name, alias)
    ref_frame, _ = read_table(reference.uri, reference.sha256, s3_client_factory)
    cur_frame, cur_ref = read_table(current_uri, current_sha256, s3_client_factory)
    report = detect_drift(
        ref_frame,
        cur_frame,
        config,
        reference_ref={**reference.to_dict(), "rows": len(ref_frame)},
        current_ref={"uri": cur_ref.uri, "sha256": cur_ref.sha256, "rows": cur_ref.rows},
    )
    log.info(
        "Drift of %s against %s@%s (v%s): %s, drifted columns %s, max PSI %s",
        cur_ref.uri,
        model_name,
        alias,
        reference.version,
        "DRIFT" if report.drifted else "no drift",
        list(report.drifted_columns),
        report.max_psi,
    )
    return report
