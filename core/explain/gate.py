"""The explainability gate: what drives the candidate, and whether that moved from the champion.

Both models are explained on the same rows of one dataset (a seeded shuffle; the sample size
fits a time budget: a small batch is timed first and the sample scaled to the budget), their
attributions summed back to the input columns before any encoding. The report lists the global
importance of every input column (mean |SHAP| and its share), the explanation drift between
the two models, the forbidden features' ranks and shares, and the columns with ~zero
attribution (candidates to drop). A forbidden feature among the top-k or above its share
fails; drift beyond its thresholds warns (or fails, ``drift_action: fail``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.evidence import GateResult
from mlsecops_provider.core.explain.attributions import Explainer, build_explainer
from mlsecops_provider.core.explain.config import ExplainConfig
from mlsecops_provider.core.explain.importance import (
    drift,
    drift_findings,
    drop_candidates,
    forbidden_findings,
    importance,
)
from mlsecops_provider.core.explain.report import gate_result
from mlsecops_provider.core.shadow.gate import champion_status
from mlsecops_provider.core.shadow.models import (
    CLASSIFICATION,
    LoadedModel,
    infer_task,
    label_values,
    positive_label,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)


def checked_label(frame: pd.DataFrame, label: str) -> np.ndarray:
    """The label column; a label with a single class is bad input."""
    import numpy as np

    y = label_values(frame, label)
    if len(np.unique(y)) < 2:
        raise DataError(f"label column {label!r} has a single class: nothing to explain")
    return y


def explain_gate(
    frame: pd.DataFrame,
    label: str,
    candidate: LoadedModel,
    champion: LoadedModel | None,
    config: ExplainConfig | None = None,
    forbid: tuple[str, ...] = (),
    subjects: dict[str, str] | None = None,
) -> tuple[GateResult, dict[str, Any]]:
    """Explain the candidate (and the champion on the same rows), then apply the rules."""
    import numpy as np

    config = config or ExplainConfig()
    y = checked_label(frame, label)
    task = infer_task("auto", candidate, y)
    positive = positive_label(None, candidate, y) if task == CLASSIFICATION else None
    status = champion_status(candidate, champion)
    models: dict[str, LoadedModel] = {"candidate": candidate}
    if champion is not None and status == "compared":
        models["champion"] = champion
    order = np.random.default_rng(config.seed).permutation(len(frame))
    runs = {name: _Run(m, frame, label, order, positive, config) for name, m in models.items()}
    rows = min(run.affordable_rows for run in runs.values())
    tables = {name: importance(run.explainer.inputs, run.values(rows))
              for name, run in runs.items()}  # fmt: skip
    forbidden = tuple(dict.fromkeys((*config.forbidden_features, *forbid)))
    statuses, findings = forbidden_findings(tables["candidate"], forbidden, config)
    summary = None
    if "champion" in tables:
        summary = drift(tables["candidate"], tables["champion"], config)
    warnings = drift_findings(summary, config)
    details = {
        "label": label,
        "task": task,
        "rows_available": len(frame),
        "rows_explained": rows,
        "sample": {"seed": config.seed, "time_budget_seconds": config.time_budget_seconds},
        "champion_status": status,
        "candidate": candidate.describe(),
        "champion": champion.describe() if champion else None,
        "explainers": {name: run.describe() for name, run in runs.items()},
        "importance": tables["candidate"],
        "champion_importance": tables.get("champion"),
        "drift": summary,
        "forbidden": statuses,
        "drop_candidates": drop_candidates(tables["candidate"], config),
        "config": {"top_k": config.top_k, "forbidden_max_share": config.forbidden_max_share,
                   "zero_share": config.zero_share, "drift_action": config.drift_action},
    }  # fmt: skip
    if config.drift_action == "fail":
        findings, warnings = findings + warnings, []
    subjects = {**(subjects or {}), "candidate": f"sha256:{candidate.digest}"}
    if "champion" in models:
        subjects["champion"] = f"sha256:{models['champion'].digest}"
    return gate_result(details, findings, warnings, subjects), details


class _Run:
    """One model's explainer, calibrated on a small batch of the shared row order."""

    def __init__(
        self,
        model: LoadedModel,
        frame: pd.DataFrame,
        label: str,
        order: np.ndarray,
        positive: Any,
        config: ExplainConfig,
    ) -> None:
        started = time.perf_counter()
        self.features = model.features(frame, label)
        self.order = order
        background = self.features.iloc[order[: config.background_rows]]
        try:
            self.explainer: Explainer = build_explainer(
                model.model, background, config.explainer, positive, config.seed
            )
        except DataError as err:
            raise DataError(f"{model.identity.uri}: {err}") from err
        calibration = min(config.calibration_rows, len(order))
        timed = time.perf_counter()
        self.first = self._attribute(0, calibration)
        self.per_row = max((time.perf_counter() - timed) / calibration, 1e-9)
        left = config.time_budget_seconds - (time.perf_counter() - started)
        fit = calibration + int(max(left, 0.0) * 0.9 / self.per_row)
        self.affordable_rows = max(
            min(config.min_rows, len(order)), min(fit, config.max_rows, len(order))
        )
        self.seconds = time.perf_counter() - started
        self.rows = calibration

    def _attribute(self, start: int, stop: int) -> np.ndarray:
        import numpy as np

        batch = self.features.iloc[self.order[start:stop]]
        try:
            values = np.asarray(self.explainer.attribute(batch), dtype=float)
        except Exception as err:  # the explainer failed on this data: cannot decide
            raise DataError(
                f"{self.explainer.method} explainer failed ({type(err).__name__}: {err})"
            ) from err
        if (
            values.shape != (len(batch), len(self.explainer.inputs))
            or not np.isfinite(values).all()
        ):
            raise DataError(f"{self.explainer.method} explainer returned unusable attributions")
        return values

    def values(self, rows: int) -> np.ndarray:
        import numpy as np

        started = time.perf_counter()
        done = len(self.first)
        rest = self._attribute(done, rows) if rows > done else self.first[:0]
        self.seconds += time.perf_counter() - started
        self.rows = rows
        log.info("%s attributions: %d rows in %.2f s", self.explainer.method, rows, self.seconds)
        return np.concatenate([self.first[:rows], rest])

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.explainer.method,
            "output": self.explainer.output,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "ms_per_row": round(self.per_row * 1000, 4),
        }
