"""The shadow evaluation gate: a candidate model against the champion on the same rows.

Both models predict every row; metrics, their paired bootstrap intervals (the same resampled
rows for both models), McNemar's test, the disagreement rate, the PSI between the two score
distributions, latency per row, model size and robustness under bounded perturbations are
compared, and the policy's thresholds (:mod:`~mlsecops_provider.core.shadow.policy`) decide.
With no champion, or when the candidate is the champion, only value thresholds apply and
the report says so.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError, PolicyError
from mlsecops_provider.core.evidence import GateResult, Verdict
from mlsecops_provider.core.shadow.models import (
    LoadedModel,
    infer_task,
    label_values,
    positive_label,
    predictions,
)
from mlsecops_provider.core.shadow.policy import (
    Estimate,
    ShadowConfig,
    Threshold,
    check_threshold,
)
from mlsecops_provider.core.shadow.report import gate_result
from mlsecops_provider.core.shadow.robustness import (
    Predictor,
    compare_robustness,
    robustness_findings,
)
from mlsecops_provider.core.shadow.stats import (
    CLASSIFICATION,
    Predictions,
    bootstrap_distributions,
    mcnemar,
    metric_names,
    percentile_interval,
    point_metrics,
    psi,
    relative_change,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)
ALL = "all"
BOOTSTRAP_METHOD = (
    "paired percentile bootstrap: multinomial row counts shared by both models; additive "
    "metrics by weighted sums, ROC AUC exactly by weighted Mann-Whitney ranks"
)


def champion_status(candidate: LoadedModel, champion: LoadedModel | None) -> str:
    """``compared``, ``none`` (no champion yet) or ``same`` (the candidate is the champion)."""
    if champion is None:
        return "none"
    same_version = (
        candidate.identity.name is not None
        and candidate.identity.name == champion.identity.name
        and candidate.identity.version == champion.identity.version
    )
    return "same" if same_version or candidate.digest == champion.digest else "compared"


@dataclass(frozen=True)
class _Setup:
    """What the evaluation works on once the data and models are checked."""

    task: str
    positive: Any
    y: np.ndarray
    thresholds: tuple[Threshold, ...]
    models: dict[str, LoadedModel]
    preds: dict[str, Predictions]


def _setup(
    frame: pd.DataFrame,
    label: str,
    models: dict[str, LoadedModel],
    config: ShadowConfig,
) -> _Setup:
    y_raw = label_values(frame, label)
    task = infer_task(config.task, models["candidate"], y_raw)
    positive = None
    if task == CLASSIFICATION:
        positive = positive_label(config.positive_label, models["candidate"], y_raw)
    y = (y_raw == positive).astype("int64") if task == CLASSIFICATION else y_raw.astype(float)
    thresholds = config.effective_thresholds(task)
    preds = {name: predictions(m, frame, label, task, positive) for name, m in models.items()}
    return _Setup(task, positive, y, thresholds, models, preds)


def shadow_evaluate(
    frame: pd.DataFrame,
    label: str,
    candidate: LoadedModel,
    champion: LoadedModel | None,
    config: ShadowConfig | None = None,
    subjects: dict[str, str] | None = None,
) -> tuple[GateResult, dict[str, Any]]:
    """Evaluate the candidate (against the champion when there is another one)."""
    config = config or ShadowConfig()
    status = champion_status(candidate, champion)
    other = champion if status == "compared" else None
    run = _setup(
        frame, label, {"candidate": candidate, **({"champion": other} if other else {})}, config
    )
    groups = _slice_groups(frame, run.thresholds, config.max_slices)
    started = time.perf_counter()
    estimates = _estimates(run.task, run.y, list(run.preds.values()), groups, config)
    seconds = time.perf_counter() - started
    log.info(
        "%d rows, %d group(s), %d paired resamples in %.1f s",
        len(frame), len(groups), config.bootstrap_resamples, seconds,
    )  # fmt: skip
    _add_costs(estimates[ALL], run.models, frame, label, config.latency_rows)
    comparison = _comparison(run.task, run.y, run.preds, config) if other else {}
    for name in ("disagreement_rate", "score_psi"):
        if name in comparison:
            estimates[ALL][name] = Estimate(comparison[name])
    robustness = _robustness(run, frame, label, config)
    rows = _threshold_rows(run.thresholds, estimates, groups, other is not None, config.confidence)
    findings = _findings(rows, comparison, robustness, config, run.task)
    note = _note(status, champion)
    details = {
        "task": run.task,
        "label": label,
        "positive_label": None if run.positive is None else _jsonable(run.positive),
        "rows": len(frame),
        "champion_status": status,
        "note": note,
        "candidate": candidate.describe(),
        "champion": champion.describe() if champion else None,
        "primary_metric": config.primary(run.task),
        "estimates": {g: {m: e.to_dict() for m, e in v.items()} for g, v in estimates.items()},
        "comparison": comparison,
        "robustness": robustness,
        "thresholds": rows,
        "bootstrap": {**_bootstrap_info(config), "seconds": round(seconds, 3)},
    }
    subjects = {**(subjects or {}), **_model_subjects(candidate, other)}
    return _warn_only(gate_result(estimates[ALL], details, findings, subjects)), details


def _warn_only(result: GateResult) -> GateResult:
    """Findings that are all warnings (e.g. a suspicious jump) make the verdict ``warn``."""
    warned = sum(1 for f in result.findings if f.get("severity") == "warn")
    if not warned:
        return result
    metrics = {**result.metrics, "thresholds_warned": warned}
    metrics["thresholds_failed"] = len(result.findings) - warned
    if warned < len(result.findings):
        return replace(result, metrics=metrics)
    return replace(result, verdict=Verdict.WARN, metrics=metrics)


def _bootstrap_info(config: ShadowConfig) -> dict[str, Any]:
    return {
        "resamples": config.bootstrap_resamples,
        "confidence": config.confidence,
        "seed": config.seed,
        "method": BOOTSTRAP_METHOD,
    }


def _slice_groups(
    frame: pd.DataFrame, thresholds: tuple[Threshold, ...], max_slices: int
) -> dict[str, np.ndarray | None]:
    """``all`` plus every slice a threshold names (``column=value``: row indices)."""
    import numpy as np

    groups: dict[str, np.ndarray | None] = {ALL: None}
    for threshold in thresholds:
        spec = threshold.slice
        if spec is None:
            continue
        if spec.column not in frame.columns:
            where = threshold.describe()
            raise DataError(f"slice column {spec.column!r} of {where} is not in the dataset")
        column = frame[spec.column]
        values = [spec.value] if spec.value is not None else column.dropna().unique().tolist()
        if len(values) > max_slices:
            raise PolicyError(
                f"slice column {spec.column!r} has {len(values)} values (max_slices {max_slices})"
            )
        for value in sorted(values, key=str):
            groups[spec.label(value)] = np.flatnonzero((column == value).to_numpy())
    return groups


def _estimates(
    task: str,
    y: np.ndarray,
    preds: list[Predictions],
    groups: dict[str, np.ndarray | None],
    config: ShadowConfig,
) -> dict[str, dict[str, Estimate]]:
    """Point values and bootstrap intervals of every metric, per group (empty slices skipped)."""
    used = {name: rows for name, rows in groups.items() if rows is None or len(rows)}
    boot = bootstrap_distributions(task, y, preds, used, config.bootstrap_resamples, config.seed)
    out: dict[str, dict[str, Estimate]] = {}
    for name, rows in used.items():
        points = point_metrics(task, y, preds, rows)
        out[name] = {
            metric: _estimate(metric, points, boot[name], config.confidence)
            for metric in metric_names(task)
        }
    return out


def _estimate(metric: str, points: list[dict], draws: list[dict], confidence: float) -> Estimate:
    cand = points[0][metric]
    cand_ci = percentile_interval(draws[0][metric], confidence)
    if len(points) == 1:
        return Estimate(cand, candidate_ci=cand_ci)
    champ = points[1][metric]
    delta_draws = draws[0][metric] - draws[1][metric]
    return Estimate(
        cand,
        champ,
        cand_ci,
        percentile_interval(draws[1][metric], confidence),
        cand - champ,
        percentile_interval(delta_draws, confidence),
        float(relative_change(cand - champ, champ)),
        percentile_interval(relative_change(delta_draws, draws[1][metric]), confidence),
    )


def _add_costs(
    estimates: dict[str, Estimate],
    models: dict[str, LoadedModel],
    frame: pd.DataFrame,
    label: str,
    rows: int,
) -> None:
    latency = {n: m.latency_us_per_row(m.features(frame, label), rows) for n, m in models.items()}
    size = {n: float(m.size_bytes) for n, m in models.items()}
    for metric, values in (("latency_us_per_row", latency), ("model_size_bytes", size)):
        cand, champ = values["candidate"], values.get("champion")
        if champ is None:
            estimates[metric] = Estimate(cand)
        else:
            delta = cand - champ
            estimates[metric] = Estimate(
                cand, champ, delta=delta, relative=float(relative_change(delta, champ))
            )


def _comparison(
    task: str, y: np.ndarray, preds: dict[str, Predictions], config: ShadowConfig
) -> dict[str, Any]:
    import numpy as np

    cand, champ = preds["candidate"], preds["champion"]
    if task == CLASSIFICATION:
        disagree = float(np.mean(cand.labels != champ.labels))
        cand_ok, champ_ok = cand.labels == y, champ.labels == y
        test = mcnemar(int(np.sum(champ_ok & ~cand_ok)), int(np.sum(cand_ok & ~champ_ok)))
        extra: dict[str, Any] = {"mcnemar": test.to_dict()}
    else:
        tolerance = config.regression_tolerance * float(np.std(y))
        disagree = float(np.mean(np.abs(cand.labels - champ.labels) > tolerance))
        extra = {"disagreement_tolerance": tolerance}
    return {
        "disagreement_rate": disagree,
        "score_psi": psi(champ.scores, cand.scores),
        **extra,
    }


def _robustness(run: _Setup, frame: pd.DataFrame, label: str, config: ShadowConfig) -> dict:
    settings = config.robustness
    if not settings.enabled:
        return {"skipped": "disabled by the policy"}
    used: set[str] = set()
    for model in run.models.values():
        used.update(model.input_columns or [c for c in frame.columns if c != label])
    numeric = [c for c in frame.columns if c in used and frame[c].dtype.kind in "iuf"]
    columns = [c for c in numeric if settings.features is None or c in settings.features]

    def predictor(model: Any) -> Predictor:
        return lambda f: predictions(model, f, label, run.task, run.positive)

    predictors = {name: predictor(model) for name, model in run.models.items()}
    frame_in = frame[[c for c in frame.columns if c in used or c == label]]
    return compare_robustness(
        predictors, frame_in, run.y, run.task, columns, settings, config.seed,
        config.regression_tolerance,
    )  # fmt: skip


def _threshold_rows(
    thresholds: tuple[Threshold, ...],
    estimates: dict[str, dict[str, Estimate]],
    groups: dict[str, np.ndarray | None],
    compared: bool,
    confidence: float,
) -> list[dict[str, Any]]:
    rows = []
    for threshold in thresholds:
        names = [ALL] if threshold.slice is None else _slice_names(threshold, groups)
        for name in names:
            label = threshold.metric if name == ALL else f"{threshold.metric} [{name}]"
            est = estimates.get(name, {}).get(threshold.metric)
            row = check_threshold(threshold, label, est, compared, confidence)
            rows.append({**row, "slice": None if name == ALL else name})
    return rows


def _slice_names(threshold: Threshold, groups: dict[str, Any]) -> list[str]:
    spec = threshold.slice
    assert spec is not None
    if spec.value is not None:
        return [spec.label()]
    return [name for name in groups if name.startswith(f"{spec.column}=")]


def _findings(
    rows: list[dict[str, Any]],
    comparison: dict[str, Any],
    robustness: dict[str, Any],
    config: ShadowConfig,
    task: str,
) -> list[dict[str, Any]]:
    findings = [
        {"kind": "threshold", "threshold": row["threshold"], "metric": row["metric"],
         "slice": row["slice"], "severity": check["status"],
         **{k: v for k, v in check.items() if k != "status"}}
        for row in rows
        for check in row["checks"]
        if check["status"] in ("fail", "warn")
    ]  # fmt: skip
    test = comparison.get("mcnemar")
    if config.mcnemar_alpha is not None and test is not None:
        worse = test["candidate_only_wrong"] > test["champion_only_wrong"]
        if worse and test["p_value"] < config.mcnemar_alpha:
            findings.append({
                "kind": "mcnemar", "metric": "mcnemar", "check": "mcnemar_alpha",
                "observed": test["p_value"], "bound": config.mcnemar_alpha,
                "message": f"candidate is significantly less accurate than the champion "
                f"(McNemar p={test['p_value']:.4g} < {config.mcnemar_alpha}, "
                f"b={test['candidate_only_wrong']}, c={test['champion_only_wrong']})",
            })  # fmt: skip
    return findings + robustness_findings(robustness, config.robustness, task)


def _note(status: str, champion: LoadedModel | None) -> str:
    if status == "none":
        return "no champion yet: value thresholds only (changes against a champion skipped)"
    if status == "same":
        assert champion is not None
        return (
            f"the candidate is the champion ({champion.identity.pinned_uri}): value thresholds "
            "only (changes against a champion skipped)"
        )
    return ""


def _model_subjects(candidate: LoadedModel, champion: LoadedModel | None) -> dict[str, str]:
    subjects = {"candidate": f"sha256:{candidate.digest}"}
    if champion is not None:
        subjects["champion"] = f"sha256:{champion.digest}"
    return subjects


def _jsonable(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
