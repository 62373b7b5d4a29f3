"""The three attack gates: privacy risk, adversarial robustness, backdoor triggers.

Each entry point attacks the candidate (and the champion on the same rows where the policy
compares them) and returns one :class:`GateResult` plus the full report. A finding fails the
gate; an attack that could not run raises (the CLI exits 2, the operator records ``error``).
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.attacks.policy import (
    ADVERSARIAL_GATE,
    BACKDOOR_GATE,
    PRIVACY_GATE,
    AdversarialConfig,
    BackdoorConfig,
    PrivacyConfig,
)
from mlsecops_provider.core.attacks.space import row_digests
from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.evidence import GateResult, Verdict

if TYPE_CHECKING:
    import pandas as pd

    from mlsecops_provider.core.shadow.models import LoadedModel

log = logging.getLogger(__name__)
TOOLS = ("adversarial-robustness-toolbox", "scikit-learn", "numpy", "pandas")
MAX_MESSAGES = 3


def _model_subjects(candidate: LoadedModel, champion: LoadedModel | None) -> dict[str, str]:
    subjects = {"candidate": f"sha256:{candidate.digest}"}
    if champion is not None:
        subjects["champion"] = f"sha256:{champion.digest}"
    return subjects


def compared_champion(candidate: LoadedModel, champion: LoadedModel | None) -> LoadedModel | None:
    """The champion, unless there is none or it is the candidate itself."""
    if champion is None or champion.digest == candidate.digest:
        return None
    return champion


def build_result(
    gate: str,
    findings: list[dict[str, Any]],
    metrics: dict[str, Any],
    subjects: dict[str, str],
    passed: str,
    errors: list[str] | None = None,
) -> GateResult:
    messages = [f["message"] for f in findings]
    verdict = Verdict.FAIL if findings else Verdict.PASS
    if errors:  # a required attack that did not run: the gate cannot decide
        verdict, messages = Verdict.ERROR, errors + messages
    if messages:
        more = len(messages) - MAX_MESSAGES
        message = "; ".join(messages[:MAX_MESSAGES]) + (f" (+{more} more)" if more > 0 else "")
    else:
        message = passed
    return GateResult(
        gate,
        verdict,
        subjects=subjects,
        metrics=metrics,
        findings=findings,
        tool_versions={name: metadata.version(name) for name in TOOLS},
        message=message,
    ).finished()


def _finding(gate: str, metric: str, check: str, observed: float, bound: float, text: str) -> dict:
    return {
        "kind": gate,
        "metric": metric,
        "check": check,
        "observed": observed,
        "bound": bound,
        "message": text,
    }


# --- privacy ------------------------------------------------------------------------------


def check_disjoint(train: pd.DataFrame, holdout: pd.DataFrame, label: str) -> int:
    """Raise when a holdout row has the same digest as a training row; return the columns."""
    import numpy as np

    columns = [c for c in train.columns if c in holdout.columns]
    if label not in columns:
        raise DataError(f"training data and holdout must both have the label column {label!r}")
    shared = np.intersect1d(row_digests(train, columns), row_digests(holdout, columns))
    if len(shared):
        raise DataError(
            f"the holdout shares {len(shared)} row(s) with the training data (same row digest "
            f"over {len(columns)} columns): non-members must be rows the model never saw"
        )
    return len(columns)


def privacy_risk(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    label: str,
    candidate: LoadedModel,
    champion: LoadedModel | None,
    config: PrivacyConfig | None = None,
    subjects: dict[str, str] | None = None,
) -> tuple[GateResult, dict[str, Any]]:
    """Membership inference against the candidate (and the champion, on the same rows)."""
    from mlsecops_provider.core.attacks.privacy import membership_inference

    config = config or PrivacyConfig()
    columns = check_disjoint(train, holdout, label)
    other = compared_champion(candidate, champion)
    report = {"candidate": membership_inference(candidate, train, holdout, label, config)}
    if other is not None:
        report["champion"] = membership_inference(other, train, holdout, label, config)
    findings = _privacy_findings(report, config)
    cand = report["candidate"]
    metrics: dict[str, Any] = {
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        **{
            f"{who}.{key}": value[key]
            for who, value in report.items()
            for key in ("auc", "auc_lower", "advantage", "tpr_at_low_fpr", "high_risk_share")
        },
        **{f"candidate.{name}.auc": a["auc"] for name, a in cand["attacks"].items()},
    }
    details = {
        "label": label,
        "digest_columns": columns,
        "policy": config.__dict__,
        "method": "members = training rows, non-members = holdout rows (disjoint by row "
        "digest), balanced; attack model trained on one half, scored on the other",
        "champion_note": None
        if other is None
        else "the champion is attacked on the "
        "candidate's training and holdout rows: the comparison means 'leaks more than the "
        "champion' when both were trained on these training rows",
        **report,
    }
    subjects = {**(subjects or {}), **_model_subjects(candidate, other)}
    passed = (
        f"membership inference AUC {cand['auc']:.3f} (lower bound {cand['auc_lower']:.3f}), "
        f"TPR at {config.low_fpr:.0%} FPR {cand['tpr_at_low_fpr']:.3f}"
    )
    return build_result(PRIVACY_GATE, findings, metrics, subjects, passed), details


def _privacy_findings(report: dict[str, Any], config: PrivacyConfig) -> list[dict[str, Any]]:
    cand = report["candidate"]
    findings = []
    if config.max_auc_lower is not None and cand["auc_lower"] > config.max_auc_lower:
        findings.append(_finding(
            PRIVACY_GATE, "auc_lower", "max_auc_lower", cand["auc_lower"], config.max_auc_lower,
            f"membership inference AUC {cand['auc']:.3f} ({config.confidence:.0%} lower bound "
            f"{cand['auc_lower']:.3f}, {cand['worst_attack']}) above {config.max_auc_lower}",
        ))  # fmt: skip
    tpr = cand["tpr_at_low_fpr"]
    if config.max_tpr_at_low_fpr is not None and tpr > config.max_tpr_at_low_fpr:
        findings.append(_finding(
            PRIVACY_GATE, "tpr_at_low_fpr", "max_tpr_at_low_fpr", tpr, config.max_tpr_at_low_fpr,
            f"membership inference TPR {tpr:.3f} at {config.low_fpr:.0%} FPR above "
            f"{config.max_tpr_at_low_fpr}",
        ))  # fmt: skip
    champ = report.get("champion")
    if champ is not None and config.max_auc_increase is not None:
        increase = cand["auc"] - champ["auc"]
        if increase > config.max_auc_increase:
            findings.append(_finding(
                PRIVACY_GATE, "auc_increase", "max_auc_increase", increase,
                config.max_auc_increase,
                f"candidate leaks more than the champion: membership AUC {cand['auc']:.3f} vs "
                f"{champ['auc']:.3f} (+{increase:.3f} > {config.max_auc_increase})",
            ))  # fmt: skip
    return findings


# --- adversarial --------------------------------------------------------------------------


def adversarial(
    frame: pd.DataFrame,
    label: str,
    candidate: LoadedModel,
    champion: LoadedModel | None,
    config: AdversarialConfig | None = None,
    subjects: dict[str, str] | None = None,
) -> tuple[GateResult, dict[str, Any]]:
    """Evasion attacks on the candidate and the champion, on the same rows."""
    from mlsecops_provider.core.attacks.evasion import run_evasion

    config = config or AdversarialConfig()
    other = compared_champion(candidate, champion)
    models = {"candidate": candidate, **({"champion": other} if other else {})}
    report, robust = run_evasion(models, frame, label, config)
    comparisons = _comparisons(robust, config)
    findings = _adversarial_findings(report, comparisons, config)
    errors = [
        f"required attack {name} did not run: {report['attacks'][name]['skipped']}"
        for name in config.required
        if "skipped" in report["attacks"].get(name, {"skipped": "unknown attack"})
    ]
    metrics: dict[str, Any] = {"rows": len(frame), "epsilon": config.epsilon}
    for attack, result in report["attacks"].items():
        for who in models:
            for key in ("adversarial_accuracy", "fooling_rate", "clean_accuracy"):
                if key in result.get(who, {}):
                    metrics[f"{who}.{attack}.{key}"] = result[who][key]
    details = {
        "label": label,
        "policy": {k: v for k, v in config.__dict__.items()},
        "comparisons": comparisons,
        "champion_status": "compared" if other else "none or same as the candidate",
        **report,
    }
    subjects = {**(subjects or {}), **_model_subjects(candidate, other)}
    ran = [a for a, r in report["attacks"].items() if "skipped" not in r]
    shown = ", ".join(
        f"{a} {report['attacks'][a]['candidate']['adversarial_accuracy']:.3f}" for a in ran
    )
    passed = f"adversarial accuracy at L-inf {config.epsilon} (min-max units): {shown}"
    result = build_result(ADVERSARIAL_GATE, findings, metrics, subjects, passed, errors)
    return result, details


def _comparisons(robust: dict[str, Any], config: AdversarialConfig) -> dict[str, Any]:
    from mlsecops_provider.core.attacks.scoring import paired_difference_ci

    out = {}
    for attack, flags in robust.items():
        if "champion" not in flags:
            continue
        cand, champ = flags["candidate"], flags["champion"]
        low, high = paired_difference_ci(
            cand, champ, config.bootstrap_resamples, config.confidence, config.seed
        )
        out[attack] = {
            "delta": float(cand.mean() - champ.mean()),
            "delta_ci": [low, high],
            "rows": len(cand),
            "candidate_only_fooled": int((champ & ~cand).sum()),
            "champion_only_fooled": int((cand & ~champ).sum()),
        }
    return out


def _adversarial_findings(
    report: dict[str, Any], comparisons: dict[str, Any], config: AdversarialConfig
) -> list[dict[str, Any]]:
    findings = []
    eps = config.epsilon
    for attack, comp in comparisons.items():
        worse = comp["delta"] < -config.tolerance and comp["delta_ci"][1] < 0
        if worse:
            res = report["attacks"][attack]
            findings.append(_finding(
                ADVERSARIAL_GATE, f"{attack}.adversarial_accuracy", "tolerance", comp["delta"],
                -config.tolerance,
                f"{attack} attack: candidate adversarial accuracy "
                f"{res['candidate']['adversarial_accuracy']:.3f} below the champion's "
                f"{res['champion']['adversarial_accuracy']:.3f} at L-inf {eps} (change "
                f"{comp['delta']:+.3f}, {config.confidence:.0%} CI [{comp['delta_ci'][0]:+.3f}, "
                f"{comp['delta_ci'][1]:+.3f}], tolerance {config.tolerance}, {comp['rows']} rows)",
            ))  # fmt: skip
    for attack, res in report["attacks"].items():
        cand = res.get("candidate")
        if cand is None:
            continue
        low = config.min_adversarial_accuracy
        if low is not None and cand["adversarial_accuracy"] < low:
            findings.append(_finding(
                ADVERSARIAL_GATE, f"{attack}.adversarial_accuracy", "min_adversarial_accuracy",
                cand["adversarial_accuracy"], low,
                f"{attack} attack: adversarial accuracy {cand['adversarial_accuracy']:.3f} "
                f"below {low} at L-inf {eps}",
            ))  # fmt: skip
        high = config.max_fooling_rate
        if high is not None and cand["fooling_rate"] > high:
            findings.append(_finding(
                ADVERSARIAL_GATE, f"{attack}.fooling_rate", "max_fooling_rate",
                cand["fooling_rate"], high,
                f"{attack} attack: fooling rate {cand['fooling_rate']:.3f} above {high} at "
                f"L-inf {eps}",
            ))  # fmt: skip
    return findings


# --- backdoor -----------------------------------------------------------------------------


def backdoor_scan(
    frame: pd.DataFrame,
    label: str,
    candidate: LoadedModel,
    champion: LoadedModel | None = None,
    config: BackdoorConfig | None = None,
    subjects: dict[str, str] | None = None,
) -> tuple[GateResult, dict[str, Any]]:
    """Trigger search on the candidate; unexplained triggers fail, their rows are quarantined."""

    from mlsecops_provider.core.attacks.backdoor import find_triggers, judge_all

    config = config or BackdoorConfig()
    other = compared_champion(candidate, champion)
    search, found, stats = find_triggers(candidate, frame, label, config)
    judged, unjudged = judge_all(search, found, frame, label, config, other)
    bad = [j for j in judged if j["explained"] is False]
    quarantine = sorted({int(p) for j in bad for p in search.carriers_of(j)})
    findings = _backdoor_findings(bad, config)
    strongest = max((t["success_rate"] for t in stats["strongest_per_class"].values()), default=0.0)
    metrics = {
        "rows": len(frame),
        "triggers_found": len(found),
        "triggers_without_carrying_rows": unjudged,
        "triggers_unexplained": len(bad),
        "triggers_not_judged": sum(1 for j in judged if j["explained"] is None),
        "quarantined_rows": len(quarantine),
        "strongest_success_rate": strongest,
        "evaluations": stats["evaluations"],
    }
    details = {
        "label": label,
        "policy": dict(config.__dict__),
        "search": stats,
        "triggers": judged,
        "quarantined_row_positions": quarantine,
        "quarantined_rows": len(quarantine),
        "method": "beam search over 1-3 features set to edge, quantile, repeated or category "
        "values; a trigger at or above the success rate is judged against the reference",
    }
    subjects = {**(subjects or {}), **_model_subjects(candidate, other)}
    passed = (
        f"no unexplained trigger at or above {config.success_rate:.0%} success "
        f"({len(found)} found, none unexplained, {metrics['triggers_not_judged']} beyond the "
        f"refit budget; strongest {strongest:.0%})"
    )
    result = build_result(BACKDOOR_GATE, findings, metrics, subjects, passed)
    return result, details


def _backdoor_findings(bad: list[dict[str, Any]], config: BackdoorConfig) -> list[dict]:
    return [
        _finding(
            BACKDOOR_GATE, "success_rate", "success_rate", j["success_rate"], config.success_rate,
            f"backdoor trigger {j['trigger']} sends {j['success_rate']:.0%} of the other rows "
            f"to class {j['target_class']} ({j['carrying_rows']} training row(s) carry it; "
            f"reference: {j['reference']}, success {_rate(j['reference_success_rate'])})",
        )
        for j in bad
    ]  # fmt: skip


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"
