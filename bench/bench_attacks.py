"""Benchmark of the three attack gates (a script, not a test).

Run: ``.venv/bin/python bench/bench_attacks.py [--task demo|wide|all]``.

``demo``: the demo's credit-risk pipeline (logistic regression on 7 numeric and 3 categorical
columns) trained on 2,000 generated rows, champion trained on another batch, holdout 500.
``wide``: a 4,000 x 20 task (``make_classification``, 10% flipped labels), a full-depth
random forest as the candidate and a depth-4 forest as the champion, half the rows held out.
Each gate runs with the shipped policy; the script prints wall time and the main figures.
The machine is shared: other jobs load it, so the wall times are upper bounds.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import pandas as pd

from mlsecops_provider.core.attacks.gate import adversarial, backdoor_scan, privacy_risk
from mlsecops_provider.core.attacks.policy import (
    ADVERSARIAL_GATE,
    BACKDOOR_GATE,
    PRIVACY_GATE,
    AdversarialConfig,
    BackdoorConfig,
    PrivacyConfig,
)
from mlsecops_provider.core.attacks.runner import drop_rows_of
from mlsecops_provider.core.policy import load_policy
from mlsecops_provider.core.shadow.models import LoadedModel, ModelIdentity

NUMERIC = ("age", "annual_income", "loan_amount", "loan_term_months", "credit_history_months",
           "num_open_accounts", "debt_to_income")  # fmt: skip
CATEGORICAL = ("employment_type", "region", "purpose")


def wrap(model: Any, name: str) -> LoadedModel:
    columns = getattr(model, "feature_names_in_", None)
    digest = name.encode().hex().ljust(64, "0")
    names = None if columns is None else tuple(map(str, columns))
    return LoadedModel(ModelIdentity(f"bench://{name}"), "", 0, digest, "sklearn", model, names)


def demo_task() -> tuple[Any, ...]:
    from mlsecops_provider.core.training.model import TrainingConfig, train_classifier
    from mlsecops_provider.include.generator import LABEL, generate

    config = TrainingConfig(LABEL, NUMERIC, CATEGORICAL)
    table = generate(2000, seed=7)
    outcome = train_classifier(table, config)
    champion = train_classifier(generate(2000, seed=8), config).model
    holdout = table.loc[outcome.holdout_index].reset_index(drop=True)
    train, _ = drop_rows_of(table, holdout, LABEL)
    return LABEL, table, train, holdout, wrap(outcome.model, "demo"), wrap(champion, "champ")


def wide_task() -> tuple[Any, ...]:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    x, y = make_classification(4000, 20, n_informative=8, flip_y=0.1, random_state=0)
    table = pd.DataFrame(x, columns=[f"f{i}" for i in range(20)]).assign(y=y)
    train, holdout = table.iloc[:2000], table.iloc[2000:].reset_index(drop=True)
    xs, ys = train.drop(columns="y"), train["y"]
    deep = RandomForestClassifier(100, random_state=0, n_jobs=1).fit(xs, ys)
    shallow = RandomForestClassifier(100, max_depth=4, min_samples_leaf=20, random_state=0)
    return "y", train, train, holdout, wrap(deep, "deep"), wrap(shallow.fit(xs, ys), "shallow")


def run(name: str, task: tuple[Any, ...]) -> float:
    label, table, train, holdout, candidate, champion = task
    policy = load_policy()
    configs = (
        policy.config(PRIVACY_GATE, PrivacyConfig),
        policy.config(ADVERSARIAL_GATE, AdversarialConfig),
        policy.config(BACKDOOR_GATE, BackdoorConfig),
    )
    gates = (
        ("privacy_risk",
         lambda: privacy_risk(train, holdout, label, candidate, champion, configs[0])),
        ("adversarial", lambda: adversarial(holdout, label, candidate, champion, configs[1])),
        ("backdoor_scan", lambda: backdoor_scan(table, label, candidate, None, configs[2])),
    )  # fmt: skip
    total = 0.0
    print(f"== {name}: train {len(train)}, holdout {len(holdout)} rows")
    for gate, call in gates:
        started = time.perf_counter()
        result, details = call()
        seconds = time.perf_counter() - started
        total += seconds
        print(f"{gate:<14} {seconds:6.1f} s  {result.verdict.value:<5} {result.message[:150]}")
        for line in figures(gate, details):
            print(f"{'':<16}{line}")
    print(f"{'total':<14} {total:6.1f} s")
    return total


def figures(gate: str, details: dict[str, Any]) -> list[str]:
    if gate == "privacy_risk":
        out = []
        for who in ("candidate", "champion"):
            if who in details:
                d = details[who]
                attacks = ", ".join(
                    f"{a} AUC {v['auc']:.3f} [{v['auc_ci'][0]:.3f}, {v['auc_ci'][1]:.3f}]"
                    for a, v in d["attacks"].items()
                )
                out.append(f"{who}: {attacks}; TPR@1%FPR {d['tpr_at_low_fpr']:.3f}; "
                           f"train/holdout accuracy {d['train_accuracy']:.2f}/"
                           f"{d['holdout_accuracy']:.2f}; {d['seconds']} s")  # fmt: skip
        return out
    if gate == "adversarial":
        out = []
        for attack, res in details["attacks"].items():
            if "skipped" in res:
                out.append(f"{attack}: skipped")
                continue
            for who in ("candidate", "champion"):
                if "adversarial_accuracy" in res.get(who, {}):
                    r = res[who]
                    out.append(f"{attack} [{who}] {r['rows']} rows: accuracy "
                               f"{r['clean_accuracy']:.3f} -> {r['adversarial_accuracy']:.3f}, "
                               f"fooling {r['fooling_rate']:.3f}, {r['seconds']} s, "
                               f"{r['queries']} queries")  # fmt: skip
        return out
    search = details["search"]
    judged, held = len(details["triggers"]), details["quarantined_rows"]
    return [f"{search['evaluations']} predicted rows, {search['seconds']} s, {judged} judged, "
            f"quarantined {held}"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("demo", "wide", "all"), default="all")
    args = parser.parse_args()
    if args.task in ("demo", "all"):
        run("demo model", demo_task())
    if args.task in ("wide", "all"):
        run("4,000 x 20 task", wide_task())


if __name__ == "__main__":
    main()
