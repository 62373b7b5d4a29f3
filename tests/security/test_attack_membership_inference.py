"""Membership inference (Shokri et al., "Membership Inference Attacks against Machine Learning
Models", IEEE S&P 2017; Yeom et al., CSF 2018 for the loss attack): an overfit model gives its
training rows away and the privacy gate blocks it; a holdout that quietly contains training
rows (which would hide the leak) is refused rather than scored.
"""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from mlsecops_provider.core.attacks.gate import privacy_risk
from mlsecops_provider.core.attacks.policy import PrivacyConfig
from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.evidence import Verdict
from tests.core.attacks._models import LABEL, loaded, noisy_task


def test_attack_membership_inference_on_an_overfit_forest() -> None:
    """Proves: a memorising model fails; members mixed into the holdout are refused."""
    data = noisy_task(1000, seed=11)
    train, holdout = data.iloc[:500], data.iloc[500:]
    forest = RandomForestClassifier(60, random_state=1).fit(train.drop(columns=LABEL), train[LABEL])
    model = loaded(forest, "memoriser")
    config = PrivacyConfig(bootstrap_resamples=200)
    result, details = privacy_risk(train, holdout, LABEL, model, None, config)
    assert result.verdict is Verdict.FAIL
    assert details["candidate"]["auc_lower"] > 0.6
    disguised = pd.concat([holdout.iloc[:400], train.iloc[:100]], ignore_index=True)
    with pytest.raises(DataError, match="shares 100 row"):
        privacy_risk(train, disguised, LABEL, model, None, config)
