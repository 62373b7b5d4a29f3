"""Global importance (mean |SHAP| per input column), explanation drift and the gate's rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.explain.config import ExplainConfig

if TYPE_CHECKING:
    import numpy as np


def importance(inputs: tuple[str, ...], values: np.ndarray) -> list[dict[str, Any]]:
    """``[{feature, mean_abs_shap, share}]`` sorted by mean |SHAP| descending (then by name)."""
    import numpy as np

    mean_abs = np.abs(values).mean(axis=0) if len(values) else np.zeros(len(inputs))
    total = float(mean_abs.sum())
    rows = [
        {
            "feature": name,
            "mean_abs_shap": float(value),
            "share": float(value / total) if total > 0 else 0.0,
        }
        for name, value in zip(inputs, mean_abs, strict=True)
    ]
    return sorted(rows, key=lambda r: (-r["mean_abs_shap"], r["feature"]))


def ranks(table: list[dict[str, Any]]) -> dict[str, int]:
    return {row["feature"]: i + 1 for i, row in enumerate(table)}


def drift(
    candidate: list[dict[str, Any]], champion: list[dict[str, Any]], config: ExplainConfig
) -> dict[str, Any]:
    """Spearman rank correlation of mean |SHAP|, top-k overlap, features whose share moved most.

    Shares are compared (not raw SHAP values, whose units differ between explainers); a
    feature only one model takes counts as 0 for the other.
    """
    import numpy as np
    from scipy.stats import spearmanr

    cand = {r["feature"]: r for r in candidate}
    champ = {r["feature"]: r for r in champion}
    names = sorted(set(cand) | set(champ))
    share_c = np.array([cand[n]["share"] if n in cand else 0.0 for n in names])
    share_h = np.array([champ[n]["share"] if n in champ else 0.0 for n in names])
    rho = None
    if len(names) >= 2 and np.ptp(share_c) > 0 and np.ptp(share_h) > 0:
        rho = float(spearmanr(share_c, share_h).statistic)
    k = min(config.top_k, len(names))
    top_c = [r["feature"] for r in candidate[:k]]
    top_h = [r["feature"] for r in champion[:k]]
    overlap = len(set(top_c) & set(top_h)) / k if k else 1.0
    moved = sorted(
        (
            {"feature": n, "candidate_share": float(c), "champion_share": float(h),
             "change": float(c - h)}
            for n, c, h in zip(names, share_c, share_h, strict=True)
        ),
        key=lambda m: (-abs(m["change"]), m["feature"]),
    )[: config.moved_shown]  # fmt: skip
    return {
        "rank_correlation": rho,
        "top_k": k,
        "top_k_overlap": overlap,
        "candidate_top_k": top_c,
        "champion_top_k": top_h,
        "moved_most": moved,
        "only_candidate": sorted(set(cand) - set(champ)),
        "only_champion": sorted(set(champ) - set(cand)),
    }


def forbidden_findings(
    table: list[dict[str, Any]], forbidden: tuple[str, ...], config: ExplainConfig
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(status of every forbidden feature, failing findings)."""
    by_name = {r["feature"]: r for r in table}
    rank_of = ranks(table)
    statuses: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    for name in forbidden:
        row = by_name.get(name)
        if row is None:
            statuses.append({"feature": name, "status": "not a model input"})
            continue
        rank, share = rank_of[name], row["share"]
        in_top = rank <= config.top_k and share > config.zero_share
        over = share > config.forbidden_max_share
        status = "fail" if in_top or over else "pass"
        statuses.append({"feature": name, "rank": rank, "share": share, "status": status})
        if status == "fail":
            why = []
            if in_top:
                why.append(f"rank {rank} <= top_k {config.top_k}")
            if over:
                why.append(f"share {share:.3f} > {config.forbidden_max_share}")
            findings.append({
                "kind": "forbidden_feature", "feature": name, "rank": rank, "share": share,
                "message": f"forbidden feature {name!r} drives the model ({', '.join(why)})",
            })  # fmt: skip
    return statuses, findings


def drift_findings(summary: dict[str, Any] | None, config: ExplainConfig) -> list[dict[str, Any]]:
    if not summary:
        return []
    findings = []
    rho = summary["rank_correlation"]
    if rho is not None and rho < config.min_rank_correlation:
        findings.append({
            "kind": "explanation_drift", "check": "min_rank_correlation", "observed": rho,
            "bound": config.min_rank_correlation,
            "message": f"importance rank correlation with the champion {rho:.3f} < "
            f"{config.min_rank_correlation}",
        })  # fmt: skip
    overlap = summary["top_k_overlap"]
    if overlap < config.min_top_k_overlap:
        findings.append({
            "kind": "explanation_drift", "check": "min_top_k_overlap", "observed": overlap,
            "bound": config.min_top_k_overlap,
            "message": f"top-{summary['top_k']} overlap with the champion {overlap:.2f} < "
            f"{config.min_top_k_overlap}",
        })  # fmt: skip
    return findings


def drop_candidates(table: list[dict[str, Any]], config: ExplainConfig) -> list[str]:
    """Input columns with ~zero attribution: candidates to drop (data minimisation)."""
    return [r["feature"] for r in table if r["share"] <= config.zero_share]
