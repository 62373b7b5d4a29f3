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
    PRIVACY_GATE,
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
) -> GateResult:
    messages = [f["message"] for f in findings]
    if messages:
        more = len(messages) - MAX_MESSAGES
        message = "; ".join(messages[:MAX_MESSAGES]) + (f" (+{more} more)" if more > 0 else "")
    else:
        message = passed
    return GateResult(
        gate,
        Verdict.FAIL if findings else Verdict.PASS,
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
