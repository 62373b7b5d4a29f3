"""Adversarial gate: ART attacks in min-max-scaled space, candidate against champion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlsecops_provider.core.attacks.gate import adversarial
from mlsecops_provider.core.attacks.policy import AdversarialConfig
from mlsecops_provider.core.attacks.space import AttackSpace
from mlsecops_provider.core.errors import DataError, PolicyError
from mlsecops_provider.core.evidence import Verdict
from tests.core.attacks._models import LABEL, loaded, margin_task

NUMERIC = ["f0", "f1", "f2", "f3"]
FAST = AdversarialConfig(
    time_budget_seconds=1.0, min_black_box_rows=3, chunk_rows=3, max_iter=3, transfer_rows=300
)


def pipeline(classifier: object) -> Pipeline:
    features = ColumnTransformer(
        [
            ("n", StandardScaler(), NUMERIC),
            ("c", OneHotEncoder(handle_unknown="ignore"), ["region"]),
        ]
    )
    return Pipeline([("features", features), ("model", classifier)])


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return margin_task(600)


@pytest.fixture(scope="module")
def models(data: pd.DataFrame) -> dict:
    """A robust linear model, and a full-depth tree fit to 15% flipped labels (fragile)."""
    x, y = data.drop(columns=LABEL), data[LABEL].to_numpy().copy()
    flip = np.random.default_rng(0).random(len(y)) < 0.15
    noisy = np.where(flip, 1 - y, y)
    return {
        "robust": loaded(pipeline(LogisticRegression()).fit(x, y), "robust"),
        "fragile": loaded(pipeline(DecisionTreeClassifier(random_state=0)).fit(x, noisy), "frag"),
    }


def test_fragile_candidate_fails_against_a_robust_champion(
    data: pd.DataFrame, models: dict
) -> None:
    result, details = adversarial(data, LABEL, models["fragile"], models["robust"], FAST)
    assert result.verdict is Verdict.FAIL
    assert result.findings[0]["metric"] == "transfer.adversarial_accuracy"
    transfer = details["attacks"]["transfer"]
    assert (
        transfer["candidate"]["adversarial_accuracy"] < transfer["champion"]["adversarial_accuracy"]
    )
    assert transfer["rows"] == 300 and details["comparisons"]["transfer"]["delta"] < -0.1
    assert details["attacks"]["black_box"]["rows"] >= 3
    assert details["norm"].startswith("L-inf, in min-max-scaled feature units")
    assert details["fixed_features"] == ["region"]
    assert "decision tree" in details["attacks"]["decision_tree"]["skipped"]


def test_robust_candidate_passes_against_a_fragile_champion(
    data: pd.DataFrame, models: dict
) -> None:
    result, details = adversarial(data, LABEL, models["robust"], models["fragile"], FAST)
    assert result.verdict is Verdict.PASS, result.message
    assert details["attacks"]["transfer"]["candidate"]["fooling_rate"] == 0.0
    assert result.metrics["candidate.black_box.adversarial_accuracy"] == 1.0


def test_absolute_limits_are_opt_in(data: pd.DataFrame, models: dict) -> None:
    alone, _ = adversarial(data, LABEL, models["fragile"], None, FAST)
    assert alone.verdict is Verdict.PASS  # nothing to compare with, no absolute limit
    strict = AdversarialConfig(**{**FAST.__dict__, "min_adversarial_accuracy": 0.9})
    result, _ = adversarial(data, LABEL, models["fragile"], None, strict)
    assert result.verdict is Verdict.FAIL and "below 0.9" in result.message


def test_required_attack_that_cannot_run_is_an_error(data: pd.DataFrame, models: dict) -> None:
    config = AdversarialConfig(**{**FAST.__dict__, "required": ("decision_tree",)})
    result, _ = adversarial(data, LABEL, models["robust"], None, config)
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith("required attack decision_tree did not run")


def test_decision_tree_attack_and_zoo_on_a_bare_tree(data: pd.DataFrame) -> None:
    frame = data[[*NUMERIC, LABEL]]
    tree = loaded(
        DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame[NUMERIC], frame[LABEL]), "t"
    )
    config = AdversarialConfig(**{**FAST.__dict__, "black_box_attack": "zoo", "epsilon": 0.3})
    result, details = adversarial(frame, LABEL, tree, None, config)
    attack = details["attacks"]["decision_tree"]["candidate"]
    assert attack["rows"] == 300 and attack["fooling_rate"] > 0.1
    assert attack["median_perturbation"] > 0
    assert details["attacks"]["black_box"]["attack"] == "zoo"


def test_attack_space_keeps_what_the_model_sees(data: pd.DataFrame) -> None:
    frame = data.drop(columns=LABEL).assign(count=np.arange(len(data)) % 7)
    space = AttackSpace.fit(frame)
    x = space.encode(frame)
    assert x[:, : len(space.numeric)].min() == 0.0 and x[:, : len(space.numeric)].max() == 1.0
    back = space.decode(x)
    assert back["region"].tolist() == frame["region"].tolist()
    assert back["count"].dtype == frame["count"].dtype
    assert np.allclose(back["f0"], frame["f0"], atol=1e-5)
    moved = space.project(x, x + 0.5, 0.1)
    assert np.allclose(moved[:, -1], x[:, -1])  # the categorical code stays
    assert np.abs(moved - x).max() <= 0.1 + 1e-6


def test_bad_inputs(data: pd.DataFrame, models: dict) -> None:
    with pytest.raises(DataError, match="lacks column"):
        adversarial(data.drop(columns=["f1"]), LABEL, models["robust"], None, FAST)
    only = AdversarialConfig(**{**FAST.__dict__, "features": ("nope",)})
    with pytest.raises(PolicyError, match="not model input columns"):
        adversarial(data, LABEL, models["robust"], None, only)
    with pytest.raises(DataError, match="too few rows"):
        adversarial(data.head(2), LABEL, models["robust"], None, FAST)
    with pytest.raises(ValueError, match="epsilon"):
        AdversarialConfig(epsilon=0)


def test_a_regressor_is_bad_input(data: pd.DataFrame) -> None:
    from sklearn.linear_model import LinearRegression

    frame = data[NUMERIC].assign(**{LABEL: data["f0"] * 3.0 + data["f1"]})
    model = loaded(LinearRegression().fit(frame[NUMERIC], frame[LABEL]), "reg")
    with pytest.raises(DataError, match="looks like a regressor"):
        adversarial(frame, LABEL, model, None, FAST)
