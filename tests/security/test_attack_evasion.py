"""Evasion (HopSkipJump: Chen, Jordan, Wainwright, IEEE S&P 2020; transfer attacks: Papernot
et al., 2016): a model that flips under small bounded input changes fails against a robust
champion on the same rows, and the attacks never win by changing what may not change (the
categorical inputs the attack space holds fixed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

from mlsecops_provider.core.attacks.gate import adversarial
from mlsecops_provider.core.attacks.policy import AdversarialConfig
from mlsecops_provider.core.evidence import Verdict
from tests.core.attacks._models import LABEL, loaded, margin_task

FAST = AdversarialConfig(
    time_budget_seconds=1.0, min_black_box_rows=3, chunk_rows=3, max_iter=3, transfer_rows=200
)


def test_attack_evasion_fragile_candidate_and_fixed_categoricals() -> None:
    """Proves: fragile vs robust fails; a categorical-only model cannot be fooled."""
    data = margin_task(400)
    numeric = data[["f0", "f1", "f2", "f3", LABEL]]
    y = numeric[LABEL].to_numpy()
    noisy = np.where(np.random.default_rng(2).random(len(y)) < 0.15, 1 - y, y)
    x = numeric.drop(columns=LABEL)
    fragile = loaded(DecisionTreeClassifier(random_state=0).fit(x, noisy), "fragile")
    robust = loaded(LogisticRegression().fit(x, y), "robust")
    result, _ = adversarial(numeric, LABEL, fragile, robust, FAST)
    assert result.verdict is Verdict.FAIL
    by_region = pd.DataFrame({"f0": data["f0"], "region": data["region"]})
    label = (data["region"] == "north").astype(int)
    frame = by_region.assign(**{LABEL: label})
    encode = ColumnTransformer([("c", OneHotEncoder(), ["region"]), ("n", "passthrough", ["f0"])])
    only_region = Pipeline([("f", encode), ("m", DecisionTreeClassifier(max_depth=1))])
    model = loaded(only_region.fit(by_region, label), "region")
    _, details = adversarial(
        frame, LABEL, model, None, AdversarialConfig(**{**FAST.__dict__, "epsilon": 1.0})
    )
    for attack in ("transfer", "black_box"):
        assert details["attacks"][attack]["candidate"]["fooling_rate"] == 0.0
