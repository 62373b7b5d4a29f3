"""Membership inference gate: an overfit forest leaks its training rows, a regularised one not."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from mlsecops_provider.core.attacks.gate import privacy_risk
from mlsecops_provider.core.attacks.policy import PrivacyConfig
from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.evidence import Verdict
from tests.core.attacks._models import LABEL, loaded, noisy_task

FAST = PrivacyConfig(bootstrap_resamples=200)


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = noisy_task(1200, seed=4)
    return data.iloc[:600].reset_index(drop=True), data.iloc[600:].reset_index(drop=True)


@pytest.fixture(scope="module")
def forests(split: tuple[pd.DataFrame, pd.DataFrame]) -> dict:
    train = split[0]
    x, y = train.drop(columns=LABEL), train[LABEL]
    deep = RandomForestClassifier(60, random_state=0).fit(x, y)
    shallow = RandomForestClassifier(60, max_depth=4, min_samples_leaf=20, random_state=0)
    return {"deep": loaded(deep, "deep"), "shallow": loaded(shallow.fit(x, y), "shallow")}


def test_overfit_forest_fails_and_regularised_passes(split: tuple, forests: dict) -> None:
    train, holdout = split
    bad, details = privacy_risk(train, holdout, LABEL, forests["deep"], None, FAST)
    assert bad.verdict is Verdict.FAIL and bad.findings[0]["check"] == "max_auc_lower"
    assert details["candidate"]["train_accuracy"] == 1.0
    assert bad.metrics["candidate.auc_lower"] > 0.6
    assert set(details["candidate"]["attacks"]) == {"black_box", "loss_threshold"}
    ok, details = privacy_risk(train, holdout, LABEL, forests["shallow"], None, FAST)
    assert ok.verdict is Verdict.PASS, ok.message
    assert ok.metrics["candidate.auc"] < 0.6
    assert details["candidate"]["evaluation_rows_per_group"] == 300
    assert ok.subjects["candidate"].startswith("sha256:")


def test_candidate_leaking_more_than_the_champion_fails(split: tuple, forests: dict) -> None:
    train, holdout = split
    lenient = PrivacyConfig(bootstrap_resamples=200, max_auc_lower=None, max_tpr_at_low_fpr=None)
    result, details = privacy_risk(
        train, holdout, LABEL, forests["deep"], forests["shallow"], lenient
    )
    assert result.verdict is Verdict.FAIL
    assert result.findings[0]["check"] == "max_auc_increase"
    assert "leaks more than the champion" in result.message
    assert "champion" in result.subjects and details["champion"]["auc"] < 0.6
    same, _ = privacy_risk(train, holdout, LABEL, forests["deep"], forests["deep"], lenient)
    assert same.verdict is Verdict.PASS and "champion" not in same.subjects


def test_overlapping_holdout_and_too_few_rows_are_errors(split: tuple, forests: dict) -> None:
    train, holdout = split
    mixed = pd.concat([holdout, train.iloc[:5]], ignore_index=True)
    with pytest.raises(DataError, match=r"shares 5 row\(s\) with the training data"):
        privacy_risk(train, mixed, LABEL, forests["deep"], None, FAST)
    with pytest.raises(DataError, match="too few rows for membership inference"):
        privacy_risk(train, holdout.iloc[:20], LABEL, forests["deep"], None, FAST)


def test_model_without_scores_is_an_error(split: tuple) -> None:
    from sklearn.svm import LinearSVC

    train, holdout = split
    svm = loaded(LinearSVC().fit(train.drop(columns=LABEL), train[LABEL]), "svm")
    with pytest.raises(DataError, match="no predict_proba"):
        privacy_risk(train, holdout, LABEL, svm, None, FAST)
