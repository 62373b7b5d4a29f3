"""The fairness gate: for whom the candidate fails, with intervals, against the champion.

For each sensitive column: Fairlearn's per-group table (selection rate, TPR, FPR, accuracy
and the primary metric), the demographic-parity and equalized-odds differences and ratios
over the groups with at least ``min_group_size`` rows (smaller groups are reported, not
judged), each with a bootstrap interval (:mod:`.stats`: exact multinomial resampling of the
cell counts, paired with the champion when there is one). By default the candidate fails when
its equalized-odds difference exceeds 0.1 beyond its interval (the lower bound above 0.1), or
exceeds the champion's by more than the tolerance beyond the paired interval.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import ConfigError, DataError
from mlsecops_provider.core.evidence import GateResult
from mlsecops_provider.core.explain.gate import checked_label
from mlsecops_provider.core.fairness import stats
from mlsecops_provider.core.fairness.config import FairnessConfig
from mlsecops_provider.core.fairness.groups import (
    fairlearn_disparities,
    group_codes,
    metric_frame,
)
from mlsecops_provider.core.fairness.report import gate_result
from mlsecops_provider.core.shadow.gate import champion_status
from mlsecops_provider.core.shadow.models import (
    CLASSIFICATION,
    LoadedModel,
    infer_task,
    positive_label,
    predictions,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)
RULES = (  # (disparity, config field, direction)
    ("equalized_odds_difference", "max_equalized_odds_difference", "max"),
    ("demographic_parity_difference", "max_demographic_parity_difference", "max"),
    ("equalized_odds_ratio", "min_equalized_odds_ratio", "min"),
    ("demographic_parity_ratio", "min_demographic_parity_ratio", "min"),
)


def fairness_gate(
    frame: pd.DataFrame,
    label: str,
    sensitive: tuple[str, ...],
    candidate: LoadedModel,
    champion: LoadedModel | None,
    config: FairnessConfig | None = None,
    subjects: dict[str, str] | None = None,
) -> tuple[GateResult, dict[str, Any]]:
    """Judge the candidate's group disparities on ``frame`` (and the champion's, paired)."""
    import numpy as np

    config = config or FairnessConfig()
    columns = tuple(dict.fromkeys(sensitive or config.sensitive_features))
    if not columns:
        raise ConfigError("fairness: no sensitive column given (--sensitive or the policy)")
    if label in columns:
        raise DataError(f"the label column {label!r} cannot be a sensitive column")
    y_raw = checked_label(frame, label)
    if infer_task("auto", candidate, y_raw) != CLASSIFICATION:
        raise DataError("fairness: the candidate is not a binary classifier")
    positive = positive_label(config.positive_label, candidate, y_raw)
    y = (y_raw == positive).astype(np.int64)
    codes = {col: group_codes(frame, col, config.bins.get(col)) for col in columns}
    status = champion_status(candidate, champion)
    models: dict[str, LoadedModel] = {"candidate": candidate}
    if champion is not None and status == "compared":
        models["champion"] = champion
    preds = {n: predictions(m, frame, label, CLASSIFICATION, positive) for n, m in models.items()}
    results, findings = {}, []
    for i, col in enumerate(columns):
        result = _column(col, codes[col], y, preds, config, config.seed + i)
        results[col] = result
        findings += [c for c in result["checks"] if c["status"] != "pass"]
    if not any(r["judged"] for r in results.values()):
        notes = "; ".join(r["note"] for r in results.values())
        raise DataError(f"no sensitive column can be judged: {notes}")
    inputs = _sensitive_inputs(models, columns)
    warnings = [
        {"kind": "sensitive_input", "feature": col, "message": f"sensitive column {col!r} is a "
         "model input (keep it in the evaluation copy only)"}
        for col in inputs
    ] if config.warn_on_sensitive_input else []  # fmt: skip
    warnings += [{"kind": "not_judged", "column": col, "message": r["note"]}
                 for col, r in results.items() if not r["judged"]]  # fmt: skip
    details = {
        "label": label,
        "positive_label": positive.item() if hasattr(positive, "item") else positive,
        "rows": len(frame),
        "primary_metric": config.primary_metric,
        "champion_status": status,
        "candidate": candidate.describe(),
        "champion": champion.describe() if champion else None,
        "sensitive_columns": list(columns),
        "sensitive_model_inputs": inputs,
        "columns": results,
        "bootstrap": {
            "resamples": config.bootstrap_resamples, "confidence": config.confidence,
            "seed": config.seed, "method": stats.METHOD,
        },
        "config": {field: getattr(config, field) for _, field, _ in RULES}
        | {"min_group_size": config.min_group_size, "champion_tolerance":
           config.champion_tolerance, "use_interval": config.use_interval},
    }  # fmt: skip
    subjects = {**(subjects or {}), **{n: f"sha256:{m.digest}" for n, m in models.items()}}
    return gate_result(details, findings, warnings, subjects), details


def _sensitive_inputs(models: dict[str, LoadedModel], columns: tuple[str, ...]) -> list[str]:
    used: set[str] = set()
    for model in models.values():
        used.update(model.input_columns or ())
    return [c for c in columns if c in used]


def _column(
    column: str,
    coded: tuple[np.ndarray, list[str]],
    y: np.ndarray,
    preds: dict[str, Any],
    config: FairnessConfig,
    seed: int,
) -> dict[str, Any]:
    import numpy as np

    codes, names = coded
    n_groups, labels = len(names), [p.labels for p in preds.values()]
    counts = stats.cell_counts(codes, y, labels, n_groups)
    draws = stats.bootstrap_counts(counts, config.bootstrap_resamples, seed)
    sizes = np.bincount(codes, minlength=n_groups)
    judged = sizes >= config.min_group_size
    if judged.sum() < 2:
        return _unjudged(column, names, sizes, config.min_group_size)
    per_model: dict[str, dict[str, Any]] = {}
    for m, (name, pred) in enumerate(preds.items()):
        point = stats.rates(counts, n_groups, len(preds), m)
        boot = stats.rates(draws, n_groups, len(preds), m)
        per_model[name] = {
            "point": point, "boot": boot,
            "disp": stats.disparities(point, judged), "disp_boot": stats.disparities(boot, judged),
            "table": metric_frame(y, pred.labels, pred.scores, codes, names,
                                  config.primary_metric),
        }  # fmt: skip
        judged_names = [names[g] for g in range(n_groups) if judged[g]]
        per_model[name]["fairlearn"] = fairlearn_disparities(per_model[name]["table"], judged_names)
    groups = [_group(g, names[g], int(sizes[g]), bool(judged[g]), per_model, config)
              for g in range(n_groups)]  # fmt: skip
    disparities = {d: _disparity(d, per_model, config.confidence) for d in stats.DISPARITIES}
    return {
        "judged": True,
        "groups": groups,
        "judged_groups": [names[g] for g in range(n_groups) if judged[g]],
        "unjudged_groups": [names[g] for g in range(n_groups) if not judged[g]],
        "disparities": disparities,
        "fairlearn": {name: v["fairlearn"] for name, v in per_model.items()},
        "overall": {name: v["table"]["__overall__"] for name, v in per_model.items()},
        "checks": _checks(column, disparities, config, "champion" in per_model),
    }


def _unjudged(column: str, names: list[str], sizes: Any, min_size: int) -> dict[str, Any]:
    """A column whose groups are too small to compare: reported, not judged."""
    hint = " (a numeric column? set gates.fairness.bins)" if len(names) > 10 else ""
    return {
        "judged": False,
        "groups": [{"group": n, "size": int(s), "judged": False}
                   for n, s in zip(names, sizes, strict=True)],
        "judged_groups": [n for n, s in zip(names, sizes, strict=True) if s >= min_size],
        "unjudged_groups": [n for n, s in zip(names, sizes, strict=True) if s < min_size],
        "disparities": {},
        "fairlearn": {},
        "overall": {},
        "checks": [],
        "note": f"{column}: fewer than two groups have min_group_size {min_size} rows: "
        f"not judged{hint}",
    }  # fmt: skip


def _group(
    g: int, name: str, size: int, judged: bool, per_model: dict[str, Any], config: FairnessConfig
) -> dict[str, Any]:
    out: dict[str, Any] = {"group": name, "size": size, "judged": judged}
    for model, v in per_model.items():
        metrics = {}
        for rate in stats.RATES:
            value = float(v["point"][rate][g])
            metrics[rate] = {
                "value": None if math.isnan(value) else value,
                "ci": stats.interval(v["boot"][rate][:, g], config.confidence),
            }
        primary = v["table"].get(name, {}).get(config.primary_metric)
        metrics[config.primary_metric] = {"value": primary, "ci": None}
        out[model] = metrics
    return out


def _disparity(name: str, per_model: dict[str, Any], confidence: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model, v in per_model.items():
        value = float(v["disp"][name])
        out[model] = None if math.isnan(value) else value
        out[f"{model}_ci"] = stats.basic_interval(value, v["disp_boot"][name], confidence, 0, 1)
    if "champion" in per_model and out["candidate"] is not None and out["champion"] is not None:
        out["delta"] = out["candidate"] - out["champion"]
        delta = per_model["candidate"]["disp_boot"][name] - per_model["champion"]["disp_boot"][name]
        out["delta_ci"] = stats.basic_interval(out["delta"], delta, confidence, -1, 1)
    return out


def _checks(
    column: str, disparities: dict[str, Any], config: FairnessConfig, compared: bool
) -> list[dict[str, Any]]:
    checks = []
    for metric, field, direction in RULES:
        bound = getattr(config, field)
        if bound is None:
            continue
        d = disparities[metric]
        ci = d["candidate_ci"]
        edge = 0 if direction == "max" else 1
        decided = ci[edge] if config.use_interval and ci else d["candidate"]
        checks.append(_check(column, metric, field, direction, decided, bound, d, ci))
    tolerance = config.champion_tolerance
    eo = disparities["equalized_odds_difference"]
    if compared and tolerance is not None and "delta" in eo:
        ci = eo["delta_ci"]
        decided = ci[0] if config.use_interval and ci else eo["delta"]
        check = _check(column, "equalized_odds_difference", "champion_tolerance", "max",
                       decided, tolerance, eo, ci, versus="champion")  # fmt: skip
        checks.append(check)
    return checks


def _check(
    column: str, metric: str, field: str, direction: str, decided: Any, bound: float,
    d: dict[str, Any], ci: Any, versus: str = "",
) -> dict[str, Any]:  # fmt: skip
    if decided is None or (isinstance(decided, float) and math.isnan(decided)):
        status, message = "error", f"{column}: {metric} cannot be computed"
    else:
        bad = decided > bound if direction == "max" else decided < bound
        status = "fail" if bad else "pass"
        what = f"{metric} - champion's" if versus else metric
        value = d["delta"] if versus else d["candidate"]
        shown = f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
        sign = ">" if direction == "max" else "<"
        message = f"{column}: {what} {shown} {sign if bad else 'within'} {bound}"
    return {
        "kind": "fairness", "column": column, "metric": metric, "check": field,
        "direction": direction, "observed": decided, "bound": bound, "status": status,
        "message": message,
    }  # fmt: skip
