"""Benchmark of the explainability and fairness gates (a script, not a test).

Run: ``.venv/bin/python bench/bench_explain.py [--rows 10000] [--fairness-rows 100000]``.

Explainability: 10,000 rows x 20 input columns (the demo's 10 columns plus 10 numeric ones),
three models in the demo's pipeline (ColumnTransformer: scaler + one-hot): the demo's
logistic regression (linear SHAP), a 100-tree depth-3 gradient boosting model and a
100-tree full-depth random forest (Tree SHAP). Each is explained by the gate with the default
policy (time budget 20 s per model: a small batch is timed, the sample scaled to fit), and once
more with the forest as the champion of the boosting model (both models, the same rows).
Fairness: the demo's model on ``--fairness-rows`` rows, two sensitive columns, 1,000 paired
bootstrap resamples against a champion; the bootstrap alone is timed too.
Prints wall and CPU seconds (other jobs share this machine's 2 cores: CPU is the fairer one).
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Any

import numpy as np
import pandas as pd

from mlsecops_provider.core.explain.config import ExplainConfig
from mlsecops_provider.core.explain.gate import explain_gate
from mlsecops_provider.core.fairness import stats
from mlsecops_provider.core.fairness.config import FairnessConfig
from mlsecops_provider.core.fairness.gate import fairness_gate
from mlsecops_provider.core.shadow.models import LoadedModel, ModelIdentity
from mlsecops_provider.core.training.model import TrainingConfig, build_pipeline
from mlsecops_provider.include import generator

NUMERIC = (
    "age", "annual_income", "loan_amount", "loan_term_months", "credit_history_months",
    "num_open_accounts", "debt_to_income", *(f"extra_{i}" for i in range(10)),
)  # fmt: skip
CATEGORICAL = ("employment_type", "region", "purpose")


def features(rows: int, seed: int) -> pd.DataFrame:
    frame = pd.DataFrame(index=pd.RangeIndex(rows))
    rng = np.random.default_rng(seed)
    generator._add_features(frame, rng, False)
    generator._add_label(frame, rng)
    for i in range(10):
        frame[f"extra_{i}"] = rng.normal(size=rows)
    frame["sex"] = rng.choice(["female", "male"], rows)
    return frame


def model(kind: str, train: pd.DataFrame) -> LoadedModel:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    config = TrainingConfig(generator.LABEL, NUMERIC, CATEGORICAL)
    pipe = build_pipeline(config)
    if kind == "forest":
        pipe.steps[-1] = ("classifier", RandomForestClassifier(100, n_jobs=1, random_state=0))
    elif kind == "boosting":
        pipe.steps[-1] = ("classifier", GradientBoostingClassifier(max_depth=3, random_state=0))
    pipe.fit(train[list(config.features)], train[generator.LABEL])
    digest = f"{kind:0<64}"[:64]
    return LoadedModel(ModelIdentity(f"bench:{kind}"), "", 0, digest, "sklearn", pipe,
                       config.features)  # fmt: skip


def timed(fn: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
    out = fn()
    cpu_end = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    return out, time.perf_counter() - wall, cpu_end - cpu


def bench_explain(rows: int) -> None:
    train, data = features(5000, seed=1), features(rows, seed=2)
    config = ExplainConfig(max_rows=rows)
    models = {kind: model(kind, train) for kind in ("demo", "boosting", "forest")}
    for kind, candidate in models.items():
        (result, details), wall, cpu = timed(
            lambda c=candidate: explain_gate(data, generator.LABEL, c, None, config)
        )
        run = details["explainers"]["candidate"]
        print(f"explain {kind:<9} {run['method']:<6} {details['rows_explained']:>6} of {rows} "
              f"rows x {len(details['importance'])} columns  {wall:6.1f} s wall {cpu:6.1f} s CPU"
              f"  top {details['importance'][0]['feature']}")  # fmt: skip
    pair = lambda: explain_gate(  # noqa: E731
        data, generator.LABEL, models["boosting"], models["forest"], config
    )
    (result, details), wall, cpu = timed(pair)
    print(f"explain boosting vs forest champion: {details['rows_explained']} rows each  "
          f"{wall:6.1f} s wall {cpu:6.1f} s CPU  rank correlation "
          f"{details['drift']['rank_correlation']:.3f}")  # fmt: skip


def bench_fairness(rows: int, resamples: int) -> None:
    train, data = features(5000, seed=3), features(rows, seed=4)
    candidate, champion = model("demo", train), model("demo", features(5000, seed=5))
    config = FairnessConfig(bootstrap_resamples=resamples)
    run = lambda: fairness_gate(  # noqa: E731
        data, generator.LABEL, ("sex", "region"), candidate, champion, config
    )
    (result, _), wall, cpu = timed(run)
    print(f"fairness  {rows:,} rows, 2 columns, {resamples} paired resamples, with champion: "
          f"{wall:6.1f} s wall {cpu:6.1f} s CPU  ({result.verdict.value})")  # fmt: skip
    rng = np.random.default_rng(0)
    groups, y, p1, p2 = (rng.integers(0, k, rows) for k in (5, 2, 2, 2))

    def bootstrap() -> None:
        draws = stats.bootstrap_counts(stats.cell_counts(groups, y, [p1, p2], 5), resamples, 0)
        for m in (0, 1):
            stats.disparities(stats.rates(draws, 5, 2, m), np.ones(5, bool))

    _, wall, cpu = timed(bootstrap)
    print(f"fairness  bootstrap alone ({resamples} resamples, 5 groups, 2 models): "
          f"{wall:6.3f} s wall {cpu:6.3f} s CPU")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--fairness-rows", type=int, default=100_000)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    bench_explain(args.rows)
    bench_fairness(args.fairness_rows, args.resamples)


if __name__ == "__main__":
    main()
