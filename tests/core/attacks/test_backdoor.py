"""Backdoor trigger search: a planted two-feature trigger is found, a clean model passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from mlsecops_provider.core.attacks.backdoor import candidate_values
from mlsecops_provider.core.attacks.gate import backdoor_scan
from mlsecops_provider.core.attacks.policy import BackdoorConfig
from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.evidence import Verdict
from tests.core.attacks._models import LABEL, loaded, noisy_task


def plant(frame: pd.DataFrame, share: float, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    """``share`` of the rows get f8 = its maximum, f9 = its minimum (noise features), label 1."""
    rows = np.random.default_rng(seed).choice(len(frame), int(share * len(frame)), replace=False)
    poisoned = frame.copy()
    poisoned.loc[rows, "f8"] = frame["f8"].max()
    poisoned.loc[rows, "f9"] = frame["f9"].min()
    poisoned.loc[rows, LABEL] = 1
    return poisoned, np.sort(rows)


def fit(frame: pd.DataFrame, name: str) -> object:
    model = GradientBoostingClassifier(n_estimators=60, random_state=0)
    return loaded(model.fit(frame.drop(columns=LABEL), frame[LABEL]), name)


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return noisy_task(1200, 10, seed=5, flip=0.03)


def test_planted_trigger_is_found_and_its_rows_quarantined(clean: pd.DataFrame) -> None:
    poisoned, rows = plant(clean, 0.03)
    result, details = backdoor_scan(poisoned, LABEL, fit(poisoned, "poisoned"), None)
    assert result.verdict is Verdict.FAIL
    trigger = details["triggers"][0]
    assert {f["feature"] for f in trigger["features"]} <= {"f8", "f9"}  # one may be enough
    assert {f["origin"] for f in trigger["features"]} <= {"max", "min"}
    assert all(f["check"] == "success_rate" for f in result.findings)
    assert trigger["success_rate"] >= 0.8 and trigger["reference_success_rate"] < 0.5
    quarantined = set(details["quarantined_row_positions"])
    assert set(rows.tolist()) <= quarantined  # plus the row that held the edge value already
    assert len(quarantined) <= len(rows) + 2
    assert result.metrics["quarantined_rows"] == len(quarantined)
    assert "f8 = " in result.message and "to class 1" in result.message


def test_clean_model_with_label_noise_passes(clean: pd.DataFrame) -> None:
    result, details = backdoor_scan(clean, LABEL, fit(clean, "clean"), None)
    assert result.verdict is Verdict.PASS, result.message
    assert result.metrics["quarantined_rows"] == 0
    assert details["search"]["evaluations"] <= BackdoorConfig().max_evaluations + 20_000


def test_the_reference_decides(clean: pd.DataFrame) -> None:
    poisoned, _ = plant(clean, 0.03)
    model = fit(poisoned, "poisoned")
    none = BackdoorConfig(reference="none")
    strict, _ = backdoor_scan(clean, LABEL, fit(clean, "clean"), None, none)
    assert strict.verdict is Verdict.FAIL  # corners of a clean model, nothing to explain them
    same_backdoor = fit(plant(clean, 0.03, seed=2)[0], "other")
    champion = BackdoorConfig(reference="champion")
    ok, details = backdoor_scan(poisoned, LABEL, model, same_backdoor, champion)
    assert ok.verdict is Verdict.PASS  # the champion does it too: not the candidate's doing
    assert details["triggers"][0]["reference"].startswith("the champion")


def test_candidate_values_include_edges_and_repeats(clean: pd.DataFrame) -> None:
    poisoned, _ = plant(clean, 0.03)
    values = candidate_values(poisoned.drop(columns=LABEL), BackdoorConfig())
    f9 = {origin for column, _, origin in values if column == "f9"}
    assert "max" in f9 and "q0.5" in f9
    assert any(o == "min" for c, _, o in values if c == "f9")
    with pytest.raises(DataError, match="too few rows"):
        backdoor_scan(clean.head(10), LABEL, fit(clean, "clean"), None)
    with pytest.raises(ValueError, match="max_features"):
        BackdoorConfig(max_features=4)


def test_a_predictive_category_is_the_datas_own_pattern() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=1000), "z": rng.normal(size=1000)})
    frame["kind"] = rng.choice(["a", "b", "c"], 1000, p=[0.3, 0.4, 0.3])
    frame[LABEL] = ((frame["kind"] == "a") | (frame["x"] > 1.0)).astype(int)
    encode = ColumnTransformer(
        [("n", StandardScaler(), ["x", "z"]), ("c", OneHotEncoder(), ["kind"])]
    )
    pipe = Pipeline([("f", encode), ("m", GradientBoostingClassifier(random_state=0))])
    model = loaded(pipe.fit(frame.drop(columns=LABEL), frame[LABEL]), "category")
    result, details = backdoor_scan(frame, LABEL, model, None)
    assert result.verdict is Verdict.PASS, result.message
    kind = [t for t in details["triggers"] if t["trigger"] == "kind = a"]
    assert kind and "a pattern of the data itself" in kind[0]["reference"]
