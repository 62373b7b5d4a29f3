"""Benchmark of the shadow evaluation at scale (a script, not a test).

Run: ``.venv/bin/python bench/bench_shadow.py [--rows 1000000] [--resamples 1000]``.

Builds ``--rows`` rows of the demo's features (the generator's vectorised feature and label
functions, without the slow per-row PII columns), trains two logistic-regression pipelines on
20,000 rows, saves them with MLflow (skops) in a temporary folder, loads them back and runs
the whole gate with the default policy: predictions of both models, paired bootstrap of every
metric (ROC AUC exactly, by weighted ranks), McNemar, PSI, latency, size and robustness.
Prints the wall time of each part and the gate's CPU time (a fairer figure on a shared
machine); the target is under 60 s wall for 1M rows x 1000 resamples.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import numpy as np
import pandas as pd

from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.shadow.gate import shadow_evaluate
from mlsecops_provider.core.shadow.models import load_model, parse_model_uri
from mlsecops_provider.core.shadow.policy import ShadowConfig
from mlsecops_provider.core.training.model import TrainingConfig, train_classifier
from mlsecops_provider.include import generator

CANDIDATE = ("debt_to_income", "loan_amount", "annual_income", "credit_history_months")
CHAMPION = ("loan_amount", "annual_income", "credit_history_months")


def features(rows: int, seed: int) -> pd.DataFrame:
    frame = pd.DataFrame(index=pd.RangeIndex(rows))
    rng = np.random.default_rng(seed)
    generator._add_features(frame, rng, False)
    generator._add_label(frame, rng)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    start = time.perf_counter()
    frame = features(args.rows, seed=1)
    train = features(20_000, seed=2)
    print(f"data        {time.perf_counter() - start:6.1f} s  ({len(frame):,} rows)")
    settings = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp:
        loaded = {}
        for name, numeric in (("candidate", CANDIDATE), ("champion", CHAMPION)):
            config = TrainingConfig(generator.LABEL, numeric, ("employment_type",))
            path = os.path.join(tmp, name)
            mlflow.sklearn.save_model(
                train_classifier(train, config).model,
                path,
                serialization_format="skops",
                pip_requirements=["scikit-learn"],
            )
            identity = parse_model_uri(f"file://{path}")
            loaded[name] = load_model(settings, identity, os.path.join(tmp, f"{name}-copy"))
        config = ShadowConfig(bootstrap_resamples=args.resamples)
        began, cpu = time.perf_counter(), time.process_time()
        result, details = shadow_evaluate(
            frame, generator.LABEL, loaded["candidate"], loaded["champion"], config
        )
        total, cpu = time.perf_counter() - began, time.process_time() - cpu
    boot = details["bootstrap"]["seconds"]
    print(f"bootstrap   {boot:6.1f} s  ({args.resamples} paired resamples, all metrics)")
    print(f"gate total  {total:6.1f} s  (predictions, bootstrap, McNemar, PSI, robustness)")
    print(f"gate CPU    {cpu:6.1f} s  (all threads of this process)")
    print(f"verdict     {result.verdict.value}: {result.message}")
    low, high = result.metrics["delta.roc_auc.low"], result.metrics["delta.roc_auc.high"]
    print(f"roc_auc     change {result.metrics['delta.roc_auc']:+.5f} [{low:+.5f}, {high:+.5f}]")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS    {peak:,.0f} MiB; load average {os.getloadavg()[0]:.2f}")
    print(f"target      {'met' if total < 60 else 'MISSED'} (< 60 s for the gate)")


if __name__ == "__main__":
    main()
