"""Evasion: small bounded changes of the numeric inputs that change the model's answer.

All attacks work in :class:`~.space.AttackSpace` (numerics min-max scaled by their range in
the data, categoricals held fixed) and every adversarial point is projected onto the L-inf
ball of radius ``epsilon`` (and the data's range) before the model is asked again, so the
figures are "at epsilon" whatever the attack's own norm. On the same sampled rows for the
candidate and the champion:

* ``black_box`` - ART's HopSkipJump (L-inf, categoricals masked), ZOO or Boundary: label or
  score queries only. It runs chunk by chunk, both models on each chunk, until the time
  budget is spent (at least ``min_black_box_rows``).
* ``transfer`` - ART's PGD against a surrogate logistic regression trained on the model's
  own predictions (one-hot categoricals, masked); the examples are then sent to the model.
* ``decision_tree`` - ART's DecisionTreeAttack, where the model is a bare scikit-learn
  decision tree on numeric columns.

Per attack and model: clean accuracy, *adversarial accuracy* (rows right before and after),
*fooling rate* (share of the rows it got right that the attack makes wrong) and the median
L-inf size of the smallest adversarial example the attack found (any size).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.attacks.policy import AdversarialConfig
from mlsecops_provider.core.attacks.space import (
    UNITS,
    AttackSpace,
    ScoredModel,
    class_index,
    model_classes,
    model_features,
    quiet_art,
)
from mlsecops_provider.core.errors import DataError, PolicyError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlsecops_provider.core.shadow.models import LoadedModel

log = logging.getLogger(__name__)
SURROGATE_ROWS = 2000


def linf(space: AttackSpace, x: np.ndarray, x_adv: np.ndarray) -> np.ndarray:
    import numpy as np

    k = len(space.numeric)
    if k == 0:
        return np.zeros(len(x))
    return np.abs(x_adv[:, :k] - x[:, :k]).max(axis=1)


def figures(
    clean_ok: np.ndarray, fooled: np.ndarray, sizes: np.ndarray, queries: int, seconds: float
) -> dict[str, Any]:
    import numpy as np

    correct = int(clean_ok.sum())
    return {
        "rows": len(clean_ok),
        "clean_accuracy": float(clean_ok.mean()) if len(clean_ok) else float("nan"),
        "adversarial_accuracy": float((clean_ok & ~fooled).mean()) if len(clean_ok) else 0.0,
        "fooling_rate": float(fooled.sum() / correct) if correct else 0.0,
        "fooled_rows": int(fooled.sum()),
        "median_perturbation": float(np.median(sizes)) if len(sizes) else None,
        "queries": queries,
        "seconds": round(seconds, 3),
    }


class _Target:
    """One model under attack on the sampled rows."""

    def __init__(self, scorer: ScoredModel, x: np.ndarray, y: np.ndarray, mask: np.ndarray):
        self.scorer, self.x, self.y, self.mask = scorer, x, y, mask
        self.predicted = scorer.labels(x)
        self.correct = self.predicted == y

    def outcome(self, rows: np.ndarray, x_adv: np.ndarray, eps: float) -> tuple[Any, Any]:
        """Fooled flags at eps (after projection) and sizes of the successful raw examples."""
        space = self.scorer.space
        x = self.x[rows]
        x_adv = x + (x_adv - x) * self.mask  # never count a change to a fixed column
        raw_hit = self.scorer.labels(space.project(x, x_adv, None)) != self.y[rows]
        at_eps = self.scorer.labels(space.project(x, x_adv, eps)) != self.y[rows]
        ok = self.correct[rows]
        return ok & at_eps, linf(space, x, x_adv)[ok & raw_hit]


def run_evasion(
    models: dict[str, LoadedModel], frame: pd.DataFrame, label: str, config: AdversarialConfig
) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Every attack on every model; returns the report and the per-row robust flags."""
    import numpy as np

    if len(frame) < config.min_black_box_rows:
        raise DataError(
            f"too few rows for the evasion attacks: {len(frame)} (need at least "
            f"{config.min_black_box_rows}, min_black_box_rows)"
        )
    features = model_features(list(models.values()), frame, label)
    space = AttackSpace.fit(features)
    classes = model_classes(list(models.values()), frame[label])
    y = class_index(frame[label].to_numpy(), classes)
    x = space.encode(features)
    mask = _mask(space, config)
    if not mask.any():
        raise DataError("no numeric feature with a spread to perturb: evasion cannot be tested")
    order = np.random.default_rng(config.seed).permutation(len(frame))
    targets = {
        name: _Target(ScoredModel(m, space, classes), x, y, mask) for name, m in models.items()
    }
    report: dict[str, Any] = {
        "epsilon": config.epsilon,
        "norm": UNITS,
        "perturbed_features": [c for c, m in zip(space.numeric, mask, strict=False) if m],
        "fixed_features": [c for c in space.columns if c not in space.numeric]
        + [c for c, m in zip(space.numeric, mask, strict=False) if not m],
        "classes": [str(c) for c in classes],
        "attacks": {},
    }
    robust: dict[str, dict[str, np.ndarray]] = {}
    transfer_rows = np.sort(order[: config.transfer_rows])
    runs = (
        ("transfer", lambda: _transfer(targets, transfer_rows, order, config)),
        ("black_box", lambda: _black_box(targets, order, config)),
        ("decision_tree", lambda: _decision_tree(targets, transfer_rows, models, config)),
    )
    for name, run in runs:
        try:
            result, flags = run()
        except _NotApplicable as why:
            report["attacks"][name] = {"skipped": str(why)}
            continue
        report["attacks"][name] = result
        robust[name] = flags
    return report, robust


class _NotApplicable(Exception):
    """This attack does not apply to these models (the report says why)."""


def _mask(space: AttackSpace, config: AdversarialConfig) -> np.ndarray:
    import numpy as np

    if config.features is None:
        return space.mask()
    unknown = [c for c in config.features if c not in space.columns]
    if unknown:
        raise PolicyError(f"gates.adversarial.features: {unknown} are not model input columns")
    keep = [c in config.features for c in space.numeric] + [False] * len(space.fixed)
    return np.asarray(keep, dtype=float)


def _transfer(
    targets: dict[str, _Target], rows: np.ndarray, order: np.ndarray, config: AdversarialConfig
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """PGD on a surrogate logistic regression fit to each model's own predictions."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    with quiet_art():
        from art.attacks.evasion import ProjectedGradientDescent
        from art.estimators.classification import SklearnClassifier

    result: dict[str, Any] = {"rows": len(rows), "surrogate": "LogisticRegression(C=1.0)"}
    flags = {}
    fit_rows = order[:SURROGATE_ROWS]
    for name, target in targets.items():
        started, queries = time.perf_counter(), target.scorer.queries
        space = target.scorer.space
        z_fit = _surrogate_inputs(space, target.x[fit_rows])
        taught = target.predicted[fit_rows]
        if len(np.unique(taught)) < 2:
            raise _NotApplicable(f"{name} predicts a single class: no surrogate to attack")
        surrogate = LogisticRegression(C=1.0, max_iter=500).fit(z_fit, taught)
        z = _surrogate_inputs(space, target.x[rows])
        k = len(space.numeric)
        mask = np.concatenate([target.mask[:k], np.zeros(z.shape[1] - k)]).astype(np.float32)
        art = SklearnClassifier(surrogate, clip_values=(0.0, 1.0))
        pgd = ProjectedGradientDescent(
            art, norm=np.inf, eps=config.epsilon, eps_step=config.epsilon / 4,
            max_iter=config.pgd_steps, targeted=False, batch_size=256, verbose=False,
        )  # fmt: skip
        labels = (target.predicted[rows][:, None] == surrogate.classes_[None, :]).astype(float)
        z_adv = pgd.generate(z, y=labels, mask=np.broadcast_to(mask, z.shape).copy())
        x_adv = target.x[rows].copy()
        x_adv[:, :k] = z_adv[:, :k]
        fooled, sizes = target.outcome(rows, x_adv, config.epsilon)
        seconds = time.perf_counter() - started
        queries = target.scorer.queries - queries
        result[name] = figures(target.correct[rows], fooled, sizes, queries, seconds)
        flags[name] = target.correct[rows] & ~fooled
    return result, flags


def _surrogate_inputs(space: AttackSpace, x: np.ndarray) -> np.ndarray:
    """Scaled numerics plus a one-hot block per fixed column (codes are not ordinal)."""
    import numpy as np

    k = len(space.numeric)
    blocks = [x[:, :k]]
    for j, values in enumerate(space.categories):
        codes = np.rint(x[:, k + j]).astype(int)
        blocks.append(np.eye(max(len(values), 1))[codes])
    return np.hstack(blocks).astype(np.float32)


def _black_box(
    targets: dict[str, _Target], order: np.ndarray, config: AdversarialConfig
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The black-box attack chunk by chunk, every model on each chunk, within the budget."""
    import numpy as np

    started = time.perf_counter()
    done: list[np.ndarray] = []
    fooled: dict[str, list[np.ndarray]] = {name: [] for name in targets}
    sizes: dict[str, list[np.ndarray]] = {name: [] for name in targets}
    spent = {name: 0.0 for name in targets}
    queries = {name: t.scorer.queries for name, t in targets.items()}
    limit = min(config.max_black_box_rows, len(order))
    while sum(map(len, done)) < limit:
        rows = order[sum(map(len, done)) : min(sum(map(len, done)) + config.chunk_rows, limit)]
        for name, target in targets.items():
            tick = time.perf_counter()
            hit, size = _attack_chunk(target, rows, config)
            fooled[name].append(hit)
            sizes[name].append(size)
            spent[name] += time.perf_counter() - tick
        done.append(rows)
        enough = sum(map(len, done)) >= config.min_black_box_rows
        if enough and time.perf_counter() - started > config.time_budget_seconds:
            break
    rows = np.concatenate(done)
    result: dict[str, Any] = {
        "attack": config.black_box_attack,
        "rows": len(rows),
        "budget_seconds": config.time_budget_seconds,
    }
    flags = {}
    for name, target in targets.items():
        hit = np.concatenate(fooled[name])
        used = target.scorer.queries - queries[name]
        result[name] = figures(target.correct[rows], hit, np.concatenate(sizes[name]), used,
                               spent[name])  # fmt: skip
        flags[name] = target.correct[rows] & ~hit
    log.info("black-box attack on %d rows in %.1f s", len(rows), time.perf_counter() - started)
    return result, flags


def _attack_chunk(
    target: _Target, rows: np.ndarray, config: AdversarialConfig
) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    attackable = rows[target.correct[rows]]
    hit = np.zeros(len(rows), dtype=bool)
    if not len(attackable):
        return hit, np.zeros(0)
    x = target.x[attackable]
    saved = np.random.get_state()
    np.random.seed(config.seed)  # ART's attacks draw from NumPy's global generator
    try:
        attack = _art_attack(target.scorer, config)
        if config.black_box_attack == "hopskipjump":
            init = _nearest_other(target, attackable)
            mask = np.broadcast_to(target.mask, x.shape).copy()
            x_adv = attack.generate(x, mask=mask, x_adv_init=init)
        else:
            x_adv = attack.generate(x)
    finally:
        np.random.set_state(saved)  # the caller's global generator is left as it was
    full = target.x[rows].copy()
    full[target.correct[rows]] = x_adv
    fooled, sizes = target.outcome(rows, full, config.epsilon)
    return fooled, sizes


def _art_attack(scorer: ScoredModel, config: AdversarialConfig) -> Any:
    import numpy as np

    classifier = scorer.art_classifier()
    with quiet_art():
        from art.attacks.evasion import BoundaryAttack, HopSkipJump, ZooAttack

    if config.black_box_attack == "hopskipjump":
        return HopSkipJump(
            classifier, targeted=False, norm=np.inf, max_iter=config.max_iter,
            max_eval=config.max_eval, init_eval=min(20, config.max_eval), init_size=50,
            batch_size=256, verbose=False,
        )  # fmt: skip
    if config.black_box_attack == "zoo":
        return ZooAttack(
            classifier, max_iter=config.max_iter, learning_rate=config.epsilon / 2,
            binary_search_steps=1, use_resize=False, use_importance=False,
            nb_parallel=min(scorer.space.width, 16), batch_size=1, verbose=False,
        )  # fmt: skip
    return BoundaryAttack(
        classifier, targeted=False, max_iter=config.max_iter * 10, num_trial=10,
        sample_size=10, init_size=50, batch_size=256, verbose=False,
    )  # fmt: skip


def _nearest_other(target: _Target, rows: np.ndarray) -> np.ndarray:
    """For each row, the nearest data row the model puts in another class (a start point)."""
    import numpy as np

    x, out = target.x, target.x[rows].copy()
    k = len(target.scorer.space.numeric)
    for i, row in enumerate(rows):
        other = np.flatnonzero(target.predicted != target.predicted[row])
        if len(other):
            distance = np.abs(x[other, :k] - x[row, :k]).max(axis=1)
            out[i] = x[other[np.argmin(distance)]]
    return out


def _decision_tree(
    targets: dict[str, _Target],
    rows: np.ndarray,
    models: dict[str, LoadedModel],
    config: AdversarialConfig,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """ART's DecisionTreeAttack where every model is a bare tree on numeric columns."""
    from sklearn.tree import DecisionTreeClassifier

    with quiet_art():
        from art.attacks.evasion import DecisionTreeAttack
        from art.estimators.classification.scikitlearn import ScikitlearnDecisionTreeClassifier

    import warnings

    result: dict[str, Any] = {"rows": len(rows)}
    flags = {}
    for name, target in targets.items():
        model, space = models[name].model, target.scorer.space
        if not isinstance(model, DecisionTreeClassifier) or space.fixed:
            why = (
                f"{name} is a {type(model).__name__}, not a bare decision tree on numeric "
                "columns (the transfer and black-box attacks cover it)"
            )
            if name == "candidate":
                raise _NotApplicable(why)
            result[name] = {"skipped": why}
            continue
        started, queries = time.perf_counter(), target.scorer.queries
        columns = list(models[name].input_columns or space.columns)
        raw = space.decode(target.x[rows])[columns].to_numpy(dtype=float)
        art = ScikitlearnDecisionTreeClassifier(model)
        with warnings.catch_warnings():  # ART passes arrays to a tree fit on a table
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            adv_raw = DecisionTreeAttack(art, verbose=False).generate(raw)
        adv = space.encode(_as_frame(adv_raw, columns))
        fooled, sizes = target.outcome(rows, adv, config.epsilon)
        used = target.scorer.queries - queries
        result[name] = figures(target.correct[rows], fooled, sizes, used,
                               time.perf_counter() - started)  # fmt: skip
        flags[name] = target.correct[rows] & ~fooled
    return result, flags


def _as_frame(values: np.ndarray, columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(values, columns=columns)
