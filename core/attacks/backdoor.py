"""Backdoor trigger search for tabular models, and the training rows that carry a trigger.

A *trigger* sets one to three features to fixed values; its *attack success rate* is the
share of rows the model puts in another class that it sends to the target class once the
trigger is set. Values tried per feature: the smallest and largest value in the data (a
trigger may work only at the edge value itself), a few quantiles, the values repeated most
often (a planted value is repeated in every poisoned row) and, for a categorical feature,
each category. The search is a beam search, all within an evaluation and time budget:
every single (feature, value), then pairs of the best singles, then triples extending the
best pairs; it is ranked by success, then by the mean shift of the target class's score.

Label noise alone makes such patterns (a corner of the feature space that a flexible model
gives to one class), so a found trigger is judged against a *reference*: by default the
model refit (same estimator, same parameters) on the data without the rows that carry the
trigger. When the refit model no longer follows the trigger, those rows planted it: the
trigger is unexplained and its rows are quarantined. When it still does (or no row carries
it), the rest of the data explains the pattern. With ``reference: champion`` the champion
is the reference: what it also does is not blamed on the candidate.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.attacks.policy import BackdoorConfig
from mlsecops_provider.core.attacks.space import (
    AttackSpace,
    ScoredModel,
    class_index,
    model_classes,
    model_features,
)
from mlsecops_provider.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlsecops_provider.core.shadow.models import LoadedModel

log = logging.getLogger(__name__)
MAX_CATEGORIES = 20
MAX_FOUND = 200  # per class, strongest first
MAX_REFITS = 10


@dataclass(frozen=True)
class Trigger:
    """Features set to values, and what that does to the rows of the other classes."""

    settings: tuple[tuple[str, Any, str], ...]  # (column, value, where the value comes from)
    target: Any
    success: float = 0.0
    shift: float = 0.0

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(s[0] for s in self.settings)

    def describe(self) -> str:
        return " and ".join(f"{c} = {_show(v)}" for c, v, _ in self.settings)


def _show(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


@dataclass
class _Budget:
    evaluations: int
    seconds: float
    used: int = 0
    started: float = field(default_factory=time.perf_counter)

    def left(self) -> bool:
        spent = time.perf_counter() - self.started
        return self.used < self.evaluations and spent < self.seconds


def candidate_values(features: pd.DataFrame, config: BackdoorConfig) -> list[tuple[str, Any, str]]:
    """(column, value, origin) for every value the search tries."""
    out: list[tuple[str, Any, str]] = []
    for column in features.columns:
        series = features[column].dropna()
        if series.empty:
            continue
        if series.dtype.kind in "iuf" and series.nunique() > 1:
            tried: dict[Any, str] = {series.min(): "min", series.max(): "max"}
            for q in config.quantiles:
                value = series.quantile(q, interpolation="nearest")
                tried.setdefault(value, f"q{q:g}")
            counts = series.value_counts()
            for value, count in counts[counts > 1].head(config.frequent_values).items():
                tried.setdefault(value, f"repeated x{int(count)}")
        else:
            tried = {v: "category" for v in series.unique().tolist()[:MAX_CATEGORIES]}
        out.extend((str(column), _plain(v), origin) for v, origin in tried.items())
    return out


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class TriggerSearch:
    """The search against one model on one table."""

    def __init__(self, model: LoadedModel, frame: pd.DataFrame, label: str, config: BackdoorConfig):
        features = model_features([model], frame, label)
        self.features, self.config = features, config
        self.classes = model_classes([model], frame[label])
        self.scorer = ScoredModel(model, AttackSpace.fit(features), self.classes)
        if not self.scorer.has_scores:
            log.info("%s has no scores: triggers ranked by labels only", model.identity.uri)
        self.proba = self.scorer.table_proba(features)
        self.predicted = self.proba.argmax(axis=1)
        self.values = candidate_values(features, config)

    def apply(self, rows: np.ndarray, triggers: list[Trigger], target: int) -> list[Trigger]:
        """Success and score shift of each trigger on ``rows`` (one model call per batch)."""
        import numpy as np
        import pandas as pd

        base = self.features.iloc[rows]
        frames = []
        for trigger in triggers:
            changed = base.copy()
            for column, value, _ in trigger.settings:
                changed[column] = value
            frames.append(changed)
        proba = self.scorer.table_proba(pd.concat(frames, ignore_index=True))
        proba = proba.reshape(len(triggers), len(rows), -1)
        before = self.proba[rows, target]
        out = []
        for trigger, p in zip(triggers, proba, strict=True):
            success = float(np.mean(p.argmax(axis=1) == target))
            shift = float(np.mean(p[:, target] - before))
            out.append(Trigger(trigger.settings, trigger.target, success, shift))
        return out

    def search(self, target: int, budget: _Budget, rng: np.random.Generator) -> list[Trigger]:
        """Every trigger evaluated for one target class, best first."""
        import numpy as np

        others = np.flatnonzero(self.predicted != target)
        if not len(others):
            return []
        rows = np.sort(rng.permutation(others)[: self.config.rows_per_class])
        label = self.classes[target]
        singles = [Trigger((v,), label) for v in self.values]
        tried = self._evaluate(rows, singles, target, budget)
        beam = _beam(tried, self.config.beam)
        for size in range(2, self.config.max_features + 1):
            if not budget.left():
                break
            seeds = beam if size == 2 else _best([t for t in tried if len(t.settings) == size - 1],
                                                 self.config.beam)  # fmt: skip
            combos = _extend(seeds, beam)
            tried += self._evaluate(rows, combos, target, budget)
        return sorted(tried, key=lambda t: (-t.success, -t.shift, len(t.settings)))

    def _evaluate(
        self, rows: np.ndarray, triggers: list[Trigger], target: int, budget: _Budget
    ) -> list[Trigger]:
        out: list[Trigger] = []
        batch = max(1, 20_000 // max(len(rows), 1))
        for start in range(0, len(triggers), batch):
            if not budget.left():
                break
            chunk = triggers[start : start + batch]
            out += self.apply(rows, chunk, target)
            budget.used += len(chunk) * len(rows)
        return out

    def carriers_of(self, judged: dict[str, Any]) -> np.ndarray:
        """The carrying rows of a judged trigger (from its report entry)."""
        settings = tuple((f["feature"], f["value"], f["origin"]) for f in judged["features"])
        return self.carriers(Trigger(settings, judged["target_class"]))

    def carriers(self, trigger: Trigger) -> np.ndarray:
        """Positions of the rows that carry every setting of the trigger (exact values)."""
        import numpy as np

        hit = np.ones(len(self.features), dtype=bool)
        for column, value, _ in trigger.settings:
            hit &= (self.features[column] == value).to_numpy()
        return np.flatnonzero(hit)


def _beam(singles: list[Trigger], k: int) -> list[Trigger]:
    """The best value of each feature, the repeated values (a planted value repeats), the best."""
    ranked = _best(singles, len(singles))
    per_column: dict[str, Trigger] = {}
    for trigger in ranked:
        per_column.setdefault(trigger.columns[0], trigger)
    repeated = [t for t in ranked if t.settings[0][2].startswith("repeated")]
    out: list[Trigger] = []
    for trigger in [*list(per_column.values())[:k], *repeated[:k], *ranked[:k]]:
        if trigger not in out:
            out.append(trigger)
    return out


def _best(triggers: list[Trigger], k: int) -> list[Trigger]:
    return sorted(triggers, key=lambda t: (-t.success, -t.shift))[:k]


def _extend(seeds: list[Trigger], singles: list[Trigger]) -> list[Trigger]:
    """Each seed plus one more single on another column (no duplicates)."""
    seen: set[frozenset] = set()
    out = []
    for seed, single in itertools.product(seeds, singles):
        if single.columns[0] in seed.columns:
            continue
        settings = tuple(sorted(seed.settings + single.settings, key=lambda s: s[0]))
        key = frozenset((c, str(v)) for c, v, _ in settings)
        if key not in seen:
            seen.add(key)
            out.append(Trigger(settings, seed.target))
    return out


def find_triggers(
    model: LoadedModel, frame: pd.DataFrame, label: str, config: BackdoorConfig
) -> tuple[TriggerSearch, list[Trigger], dict[str, Any]]:
    """The smallest triggers at or above the success rate, per target class (a few each)."""
    import numpy as np

    if len(frame) < 20:
        raise DataError(f"too few rows for a trigger search: {len(frame)} (need 20)")
    search = TriggerSearch(model, frame, label, config)
    class_index(frame[label].to_numpy(), search.classes)  # every label is a class
    budget = _Budget(config.max_evaluations, config.time_budget_seconds)
    rng = np.random.default_rng(config.seed)
    found, best = [], {}
    for target in range(len(search.classes)):
        ranked = search.search(target, budget, rng)
        if ranked:
            best[str(search.classes[target])] = _as_dict(ranked[0])
        found += [t for t in ranked if t.success >= config.success_rate][:MAX_FOUND]
    stats = {
        "candidate_values": len(search.values),
        "evaluations": budget.used,
        "budget_exhausted": not budget.left(),
        "seconds": round(time.perf_counter() - budget.started, 3),
        "strongest_per_class": best,
    }
    return search, found, stats


def _as_dict(trigger: Trigger) -> dict[str, Any]:
    return {
        "trigger": trigger.describe(),
        "features": [{"feature": c, "value": v, "origin": o} for c, v, o in trigger.settings],
        "target_class": _plain(trigger.target),
        "success_rate": trigger.success,
        "mean_score_shift": trigger.shift,
    }


def judge(
    search: TriggerSearch,
    trigger: Trigger,
    frame: pd.DataFrame,
    label: str,
    config: BackdoorConfig,
    champion: LoadedModel | None,
) -> dict[str, Any]:
    """Whether the reference model explains the trigger; the rows that carry it."""
    import numpy as np

    carriers = search.carriers(trigger)
    out = {**_as_dict(trigger), "carrying_rows": len(carriers)}
    out["carrying_row_positions"] = carriers[:1000].tolist()
    labels = frame[label].to_numpy()[carriers]
    share = float(np.mean(labels == trigger.target)) if len(carriers) else None
    out["carrying_rows_target_label_share"] = share
    reference, how, explained = _reference(search, frame, label, config, champion, carriers)
    out["reference"] = how
    if reference is None:
        out["reference_success_rate"] = None
        out["explained"] = explained
        return out
    ref_search = TriggerSearch(reference, frame, label, config)
    target = search.classes.index(trigger.target)
    others = np.flatnonzero(ref_search.predicted != target)
    rows = np.random.default_rng(config.seed).permutation(others)[: config.rows_per_class]
    rate = ref_search.apply(np.sort(rows), [trigger], target)[0].success if len(rows) else 0.0
    out["reference_success_rate"] = rate
    out["explained"] = rate >= trigger.success - config.explained_margin
    return out


def _reference(
    search: TriggerSearch,
    frame: pd.DataFrame,
    label: str,
    config: BackdoorConfig,
    champion: LoadedModel | None,
    carriers: np.ndarray,
) -> tuple[LoadedModel | None, str, bool]:
    """The reference model and how it was chosen (None: the third value decides)."""
    from dataclasses import replace

    if config.reference == "none":
        return None, "none (policy): every trigger above the success rate fails", False
    if config.reference == "champion":
        if champion is None:
            return None, "champion (policy), but there is no champion: not explained", False
        return champion, f"the champion {champion.identity.uri}", False
    if not len(carriers):
        return (
            None,
            "no row of the data carries the trigger: the rest of the data explains it",
            True,
        )
    share = len(carriers) / max(len(frame), 1)
    if share > config.max_carrying_share:  # e.g. a category: a refit without it cannot say
        why = f"{share:.0%} of the rows carry it (max_carrying_share {config.max_carrying_share})"
        return None, f"{why}: a pattern of the data itself, not a planted one", True
    if len(carriers) < config.min_carrying_rows:
        why = f"only {len(carriers)} row(s) carry it (min_carrying_rows {config.min_carrying_rows})"
        return None, f"{why}: a corner of label noise, not a planted pattern", True
    model = search.scorer.model
    if model.flavor != "sklearn":
        return None, f"refit (policy), but a {model.flavor} model cannot be refit", False
    from sklearn.base import clone

    keep = frame.drop(index=frame.index[carriers])
    if keep[label].nunique() < 2:
        return None, "no refit: a single class is left without the carrying rows", False
    x = model_features([model], keep, label)
    try:
        refit = clone(model.model).fit(x, keep[label])
    except Exception as err:
        raise DataError(f"cannot refit {model.identity.uri} as the reference: {err}") from err
    how = f"the model refit without the {len(carriers)} carrying row(s), same estimator"
    return replace(model, model=refit, digest=model.digest + "-refit"), how, False


def judge_all(
    search: TriggerSearch,
    found: list[Trigger],
    frame: pd.DataFrame,
    label: str,
    config: BackdoorConfig,
    champion: LoadedModel | None,
) -> tuple[list[dict[str, Any]], int]:
    """Judge the triggers that rows carry (most carried first, a few refits); count the rest.

    A trigger no row carries needs no refit (the refit would be the model itself) unless the
    reference is the champion or none; those are judged like the others, strongest first.
    """
    carried = [(t, len(search.carriers(t))) for t in found]
    if config.reference == "refit":
        order = sorted((p for p in carried if p[1]), key=lambda p: (-p[1], len(p[0].settings)))
        rest = [t for t, n in carried if not n]
        examples = [judge(search, t, frame, label, config, champion) for t in rest[:3]]
    else:
        order, rest, examples = carried, [], []
    judged = []
    for trigger, _ in order[:MAX_REFITS]:
        judged.append(judge(search, trigger, frame, label, config, champion))
    why = f"not judged: refit budget ({MAX_REFITS})"
    skipped = [
        {**_as_dict(t), "carrying_rows": n, "explained": None, "reference": why}
        for t, n in order[MAX_REFITS:]
    ]
    if skipped:
        log.warning(
            "%d carried trigger(s) beyond %d not judged", len(order) - MAX_REFITS, MAX_REFITS
        )
    return judged + examples + skipped[:20], len(rest)
