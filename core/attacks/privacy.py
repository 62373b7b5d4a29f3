"""Membership inference: does the model tell its training rows from rows it never saw?

Two attacks, both scored on members and non-members they did not train on:

* ``black_box`` - ART's :class:`MembershipInferenceBlackBox` (Shokri et al.-style attack
  model, here a random forest by default) on the model's class probabilities and the true
  label, its input features standard-scaled (``scaler_type``, ART PR #2384 for issue #2152).
  The model is queried through :class:`~.space.AttackSpace`, i.e. on min-max-scaled inputs
  that decode to exactly the table the model was trained on. Members and non-members are
  balanced, then split in halves: the attack model fits on one half, is scored on the other.
* ``loss_threshold`` - the log-probability of the true label (Yeom et al.): members tend to
  have a lower loss. No training; scored on the same evaluation half.

Figures per attack: ROC AUC with a stratified bootstrap interval, the membership advantage
(max TPR - FPR), the TPR at a low FPR (1% by default). The *share of training rows at high
individual risk* is the share of all (sampled) training rows whose true-label loss is below
what only ``low_fpr`` of the holdout rows reach: the rows the loss attack would call members
at that false-positive rate.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.attacks.policy import PrivacyConfig
from mlsecops_provider.core.attacks.scoring import score_attack
from mlsecops_provider.core.attacks.space import (
    AttackSpace,
    ScoredModel,
    class_index,
    model_classes,
    model_features,
    quiet_art,
)
from mlsecops_provider.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlsecops_provider.core.shadow.models import LoadedModel

log = logging.getLogger(__name__)
LOG_FLOOR = 1e-12


def true_label_log_proba(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.log(np.clip(proba[np.arange(len(y)), y], LOG_FLOOR, 1.0))


def membership_inference(
    model: LoadedModel,
    members: pd.DataFrame,
    non_members: pd.DataFrame,
    label: str,
    config: PrivacyConfig,
) -> dict[str, Any]:
    """Both attacks against one model; raises DataError when they cannot run."""
    import numpy as np

    started = time.perf_counter()
    rows = min(len(members), len(non_members), config.max_rows)
    if rows < config.min_rows:
        raise DataError(
            f"too few rows for membership inference: {len(members)} training and "
            f"{len(non_members)} holdout row(s), need at least {config.min_rows} of each"
        )
    if not model.has_scores:
        raise DataError(
            f"{model.identity.uri} has no predict_proba: membership inference needs scores"
        )
    scorer, (x_m, y_m, p_m), (x_n, y_n, p_n) = _sampled(
        model, members, non_members, label, rows, config.seed
    )
    half = rows // 2
    fit, ev = slice(0, half), slice(half, rows)
    truth = np.concatenate([np.ones(rows - half), np.zeros(rows - half)])
    bb = _black_box(scorer, config, (x_m, y_m, p_m), (x_n, y_n, p_n), fit, ev)
    loss_scores = np.concatenate(
        [true_label_log_proba(p_m[ev], y_m[ev]), true_label_log_proba(p_n[ev], y_n[ev])]
    )
    args = (config.bootstrap_resamples, config.confidence, config.seed, config.low_fpr)
    attacks = {
        "black_box": {**score_attack(truth, bb, *args), "attack_model": config.attack_model},
        "loss_threshold": score_attack(truth, loss_scores, *args),
    }
    risk = _high_risk(scorer, members, non_members, label, config)
    accuracy = {
        "train_accuracy": float(np.mean(p_m.argmax(axis=1) == y_m)),
        "holdout_accuracy": float(np.mean(p_n.argmax(axis=1) == y_n)),
    }
    return {
        "rows_per_group": rows,
        "attack_train_rows_per_group": half,
        "evaluation_rows_per_group": rows - half,
        **worst_case(attacks),
        **risk,
        **accuracy,
        "queries": scorer.queries,
        "seconds": round(time.perf_counter() - started, 3),
    }


def worst_case(attacks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every attack, and the worst figure of any: a model leaks as much as its worst attack."""
    worst = max(attacks, key=lambda name: attacks[name]["auc"])
    return {
        "attacks": attacks,
        "worst_attack": worst,
        "auc": attacks[worst]["auc"],
        "auc_lower": max(a["auc_ci"][0] for a in attacks.values()),
        "advantage": max(a["advantage"] for a in attacks.values()),
        "tpr_at_low_fpr": max(a["tpr_at_low_fpr"] for a in attacks.values()),
    }


def _sampled(
    model: LoadedModel,
    members: pd.DataFrame,
    non_members: pd.DataFrame,
    label: str,
    rows: int,
    seed: int,
) -> tuple[ScoredModel, tuple[Any, Any, Any], tuple[Any, Any, Any]]:
    """The model over one attack space, and ``rows`` sampled of each group: (x, y, proba)."""
    import numpy as np
    import pandas as pd

    both = pd.concat([members, non_members], ignore_index=True)
    space = AttackSpace.fit(model_features([model], both, label))
    classes = model_classes([model], both[label])
    scorer = ScoredModel(model, space, classes)
    rng = np.random.default_rng(seed)
    out = []
    for group in (members, non_members):
        pick = rng.permutation(len(group))[:rows]
        x = space.encode(model_features([model], group.iloc[pick], label))
        y = class_index(group[label].to_numpy()[pick], classes)
        out.append((x, y, scorer.proba(x)))
    return scorer, out[0], out[1]


def _black_box(
    scorer: ScoredModel,
    config: PrivacyConfig,
    members: tuple[np.ndarray, np.ndarray, np.ndarray],
    non_members: tuple[np.ndarray, np.ndarray, np.ndarray],
    fit: slice,
    ev: slice,
) -> np.ndarray:
    """ART's black-box attack model: fit on one half, membership scores on the other."""
    import numpy as np

    with quiet_art():
        from art.attacks.inference.membership_inference import MembershipInferenceBlackBox

    (x_m, y_m, p_m), (x_n, y_n, p_n) = members, non_members
    attack = MembershipInferenceBlackBox(
        scorer.art_classifier(),
        input_type="prediction",
        attack_model_type=config.attack_model,
        scaler_type="standard",
    )
    if "random_state" in attack.attack_model.get_params():
        attack.attack_model.set_params(random_state=config.seed)
    try:
        attack.fit(x_m[fit], y_m[fit], x_n[fit], y_n[fit], pred=p_m[fit], test_pred=p_n[fit])
        x_ev = np.concatenate([x_m[ev], x_n[ev]])
        y_ev = np.concatenate([y_m[ev], y_n[ev]])
        p_ev = np.concatenate([p_m[ev], p_n[ev]])
        scores = attack.infer(x_ev, y_ev, pred=p_ev, probabilities=True)
    except ValueError as err:
        raise DataError(f"ART membership inference could not run: {err}") from err
    return np.asarray(scores, dtype=np.float64).ravel()


def _high_risk(
    scorer: ScoredModel,
    members: pd.DataFrame,
    non_members: pd.DataFrame,
    label: str,
    config: PrivacyConfig,
) -> dict[str, Any]:
    """Share of the training rows the loss attack calls members at ``low_fpr``."""
    import numpy as np

    space, model, classes = scorer.space, scorer.model, scorer.classes
    cap = 20 * config.max_rows
    rng = np.random.default_rng(config.seed + 1)
    m = members.iloc[np.sort(rng.permutation(len(members))[:cap])]
    n = non_members.iloc[np.sort(rng.permutation(len(non_members))[:cap])]
    s_m = true_label_log_proba(
        scorer.proba(space.encode(model_features([model], m, label))),
        class_index(m[label].to_numpy(), classes),
    )
    s_n = true_label_log_proba(
        scorer.proba(space.encode(model_features([model], n, label))),
        class_index(n[label].to_numpy(), classes),
    )
    threshold = float(np.quantile(s_n, 1.0 - config.low_fpr))
    high = int(np.sum(s_m > threshold))
    return {
        "high_risk_rows": high,
        "high_risk_share": high / len(s_m),
        "high_risk_rule": f"true-label log-probability above the holdout's "
        f"{1 - config.low_fpr:.0%} quantile ({threshold:.4g}), over {len(s_m)} training rows",
    }
