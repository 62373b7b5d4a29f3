"""The fairness gate on generated data whose truth is known, with real sklearn and Fairlearn."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlsecops_provider.core.errors import ConfigError, DataError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.fairness import stats
from mlsecops_provider.core.fairness.config import FairnessConfig
from mlsecops_provider.core.fairness.gate import fairness_gate
from mlsecops_provider.core.fairness.report import render_svg
from mlsecops_provider.core.fairness.sensitive import evaluation_copy, join_sensitive
from mlsecops_provider.core.shadow.models import LoadedModel, ModelIdentity

FAST = FairnessConfig(bootstrap_resamples=300)
FEATURES = ("x1", "x2")


def population(rows: int = 6000, seed: int = 0) -> pd.DataFrame:
    """The label depends on x1, x2 only, the same way in both groups."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.normal(size=rows), "x2": rng.normal(size=rows)})
    frame["sex"] = rng.choice(["female", "male"], rows)
    frame["female"] = (frame["sex"] == "female").astype(float)
    frame["row_id"] = [f"r{i}" for i in range(rows)]
    frame["label"] = (frame["x1"] + 0.5 * frame["x2"] + rng.normal(0, 0.6, rows) > 0).astype(int)
    return frame


def loaded(model: Any, columns: tuple[str, ...], name: str) -> LoadedModel:
    digest = (name * 64)[:64]
    return LoadedModel(ModelIdentity(f"file:///m/{name}"), "/m", 0, digest, "sklearn", model,
                       columns)  # fmt: skip


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return population()


@pytest.fixture(scope="module")
def models(data: pd.DataFrame) -> dict[str, LoadedModel]:
    """``fair`` learns the true rule; ``biased`` learnt labels where women's positives were
    flipped to negative (so it under-selects qualified women: a TPR gap)."""
    from sklearn.linear_model import LogisticRegression

    fair = LogisticRegression().fit(data[list(FEATURES)], data["label"])
    rng = np.random.default_rng(1)
    skewed = data["label"].to_numpy().copy()
    skewed[(data["sex"] == "female").to_numpy() & (rng.random(len(data)) < 0.5)] = 0
    columns = (*FEATURES, "female")
    biased = LogisticRegression().fit(data[list(columns)], skewed)
    return {"fair": loaded(fair, FEATURES, "a"), "biased": loaded(biased, columns, "b")}


def test_biased_model_fails_while_a_fair_one_on_the_same_data_passes(
    data: pd.DataFrame, models: dict[str, LoadedModel]
) -> None:
    fair, fair_details = fairness_gate(data, "label", ("sex",), models["fair"], None, FAST)
    biased, details = fairness_gate(data, "label", ("sex",), models["biased"], None, FAST)
    assert fair.verdict == Verdict.PASS, fair.message
    assert biased.verdict == Verdict.FAIL
    eo = details["columns"]["sex"]["disparities"]["equalized_odds_difference"]
    assert eo["candidate_ci"][0] > 0.1
    assert "equalized_odds_difference" in biased.message
    assert (
        fair_details["columns"]["sex"]["disparities"]["equalized_odds_difference"]["candidate"]
        < 0.05
    )
    # the model takes the sensitive attribute as an input: reported
    assert details["sensitive_model_inputs"] == []  # "female", not "sex", is the input
    assert any(f["check"] == "max_equalized_odds_difference" for f in biased.findings)


def test_worse_than_the_champion_fails_on_the_paired_interval(
    data: pd.DataFrame, models: dict[str, LoadedModel]
) -> None:
    loose = FairnessConfig(bootstrap_resamples=300, max_equalized_odds_difference=None)
    result, details = fairness_gate(
        data, "label", ("sex",), models["biased"], models["fair"], loose
    )
    eo = details["columns"]["sex"]["disparities"]["equalized_odds_difference"]
    assert result.verdict == Verdict.FAIL
    assert eo["delta_ci"][0] > 0.02
    assert [f["check"] for f in result.findings] == ["champion_tolerance"]
    same, _ = fairness_gate(data, "label", ("sex",), models["fair"], models["fair"], loose)
    assert same.verdict == Verdict.PASS  # the candidate is the champion: no comparison


def test_points_match_fairlearn_and_group_rates(
    data: pd.DataFrame, models: dict[str, LoadedModel]
) -> None:
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        equalized_odds_ratio,
    )

    _, details = fairness_gate(data, "label", ("sex",), models["biased"], None, FAST)
    y = data["label"].to_numpy()
    pred = models["biased"].model.predict(data[["x1", "x2", "female"]])
    sf = data["sex"].to_numpy()
    expected = {
        "demographic_parity_difference": demographic_parity_difference(
            y, pred, sensitive_features=sf
        ),
        "demographic_parity_ratio": demographic_parity_ratio(y, pred, sensitive_features=sf),
        "equalized_odds_difference": equalized_odds_difference(y, pred, sensitive_features=sf),
        "equalized_odds_ratio": equalized_odds_ratio(y, pred, sensitive_features=sf),
    }
    column = details["columns"]["sex"]
    for name, value in expected.items():
        assert column["disparities"][name]["candidate"] == pytest.approx(value)
        assert column["fairlearn"]["candidate"][name] == pytest.approx(value)
        low, high = column["disparities"][name]["candidate_ci"]
        assert low <= value <= high
    women = next(g for g in column["groups"] if g["group"] == "female")
    mask = sf == "female"
    assert women["candidate"]["selection_rate"]["value"] == pytest.approx(pred[mask].mean())
    assert women["candidate"]["roc_auc"]["value"] is not None


def test_issue_example_demographic_parity_passes_where_equalized_odds_does_not() -> None:
    """FPR 0.07 vs 0.18 with equal selection rates: DP difference ~0, EO difference 0.11."""
    rows = []
    # group a: 1000 positives (TPR 0.80), 1000 negatives (FPR 0.07) -> selection 0.435
    # group b: 1000 positives (TPR 0.69), 1000 negatives (FPR 0.18) -> selection 0.435
    for group, tpr, fpr in (("a", 0.80, 0.07), ("b", 0.69, 0.18)):
        pos, neg = int(tpr * 1000), int(fpr * 1000)
        rows += [(group, 1, 1)] * pos + [(group, 1, 0)] * (1000 - pos)
        rows += [(group, 0, 1)] * neg + [(group, 0, 0)] * (1000 - neg)
    arr = np.array(rows, dtype=object)
    codes = (arr[:, 0] == "b").astype(int)
    y, pred = arr[:, 1].astype(int), arr[:, 2].astype(int)
    counts = stats.cell_counts(codes, y, [pred], 2)
    point = stats.disparities(stats.rates(counts, 2, 1, 0), np.array([True, True]))
    assert float(point["demographic_parity_difference"]) == pytest.approx(0.0)
    assert float(point["equalized_odds_difference"]) == pytest.approx(0.11)


def test_small_groups_are_reported_not_judged(
    data: pd.DataFrame, models: dict[str, LoadedModel]
) -> None:
    frame = data.copy()
    frame.loc[frame.index[:12], "sex"] = "other"
    result, details = fairness_gate(frame, "label", ("sex",), models["fair"], None, FAST)
    column = details["columns"]["sex"]
    assert column["unjudged_groups"] == ["other"]
    assert {g["group"]: g["judged"] for g in column["groups"]}["other"] is False
    assert result.verdict == Verdict.PASS


def test_bootstrap_of_100k_rows_is_vectorised_and_fast() -> None:
    rng = np.random.default_rng(0)
    n = 100_000
    groups, y, p1, p2 = (rng.integers(0, k, n) for k in (4, 2, 2, 2))
    started = time.perf_counter()
    counts = stats.cell_counts(groups, y, [p1, p2], 4)
    draws = stats.bootstrap_counts(counts, 1000, 0)
    judged = np.ones(4, bool)
    for model in (0, 1):
        stats.disparities(stats.rates(draws, 4, 2, model), judged)
    assert time.perf_counter() - started < 2.0
    assert draws.shape == (1000, 32) and (draws.sum(axis=1) == n).all()


def test_bad_input_is_a_data_error(data: pd.DataFrame, models: dict[str, LoadedModel]) -> None:
    with pytest.raises(DataError, match="not in the dataset"):
        fairness_gate(data, "label", ("age_band",), models["fair"], None, FAST)
    with pytest.raises(DataError, match="constant"):
        fairness_gate(data.assign(sex="x"), "label", ("sex",), models["fair"], None, FAST)
    with pytest.raises(DataError, match="single class"):
        fairness_gate(data.assign(label=0), "label", ("sex",), models["fair"], None, FAST)
    with pytest.raises(ConfigError, match="no sensitive column"):
        fairness_gate(data, "label", (), models["fair"], None, FAST)
    tiny = FairnessConfig(bootstrap_resamples=100, min_group_size=10_000)
    with pytest.raises(DataError, match="no sensitive column can be judged"):
        fairness_gate(data, "label", ("sex",), models["fair"], None, tiny)


def test_a_column_with_one_large_group_is_reported_not_judged(
    data: pd.DataFrame, models: dict[str, LoadedModel]
) -> None:
    frame = data.assign(region=np.where(np.arange(len(data)) < 20, "small", "large"))
    result, details = fairness_gate(frame, "label", ("region", "sex"), models["biased"], None, FAST)
    assert details["columns"]["region"]["judged"] is False
    assert details["columns"]["sex"]["judged"] is True
    assert result.verdict == Verdict.FAIL  # sex is still judged
    assert any(f.get("kind") == "not_judged" for f in result.findings)
    ET.fromstring(render_svg(details))


def test_sensitive_copy_is_joined_by_the_row_key(data: pd.DataFrame) -> None:
    copy = evaluation_copy(data, "row_id", ("sex",))
    assert list(copy.columns) == ["row_id", "sex"]
    rows = data.drop(columns=["sex"]).sample(frac=0.5, random_state=0)
    joined = join_sensitive(rows, copy, "row_id", ("sex",))
    assert (joined["sex"].to_numpy() == data.loc[rows.index, "sex"].to_numpy()).all()
    with pytest.raises(DataError, match="in the evaluation rows themselves"):
        join_sensitive(data, copy, "row_id", ("sex",))
    with pytest.raises(DataError, match="no entry"):
        join_sensitive(rows, copy.iloc[:10], "row_id", ("sex",))
    with pytest.raises(DataError, match="duplicate"):
        evaluation_copy(pd.concat([data, data.head(1)]), "row_id", ("sex",))


def test_svg_is_well_formed_and_script_free(
    data: pd.DataFrame, models: dict[str, LoadedModel]
) -> None:
    frame = data.assign(sex=data["sex"].map({"female": "<script>", "male": "m&m"}))
    _, details = fairness_gate(frame, "label", ("sex",), models["biased"], models["fair"], FAST)
    svg = render_svg(details)
    ET.fromstring(svg)
    assert "<script" not in svg and "circle" in svg


def test_cli_exit_codes(tmp_path: Path, data: pd.DataFrame, models: dict, cli: Any) -> None:
    import mlflow

    from mlsecops_provider.core.data.datasets import write_table

    for name in ("fair", "biased"):
        mlflow.sklearn.save_model(models[name].model, str(tmp_path / name),
                                  serialization_format="skops")  # fmt: skip
    rows = data.drop(columns=["sex"])
    write_table(rows, (tmp_path / "rows.parquet").as_uri())
    write_table(evaluation_copy(data, "row_id", ("sex",)), (tmp_path / "s.parquet").as_uri())
    write_table(data.assign(region="north"), (tmp_path / "all.parquet").as_uri())
    policy = tmp_path / "p.yaml"
    policy.write_text(json.dumps({"gates": {"fairness": {"bootstrap_resamples": 200}}}))

    def run(model: str, *extra: Any) -> Any:
        return cli(["fairness", "--model", tmp_path / model, "--label", "label",
                    "--policy", policy, *extra])  # fmt: skip

    joined = ("--data", tmp_path / "rows.parquet", "--sensitive", "sex",
              "--sensitive-data", tmp_path / "s.parquet", "--row-key", "row_id")  # fmt: skip
    assert run("fair", *joined, "--report", tmp_path / "r.json").code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["result"]["subjects"]["sensitive_data"].startswith("sha256:")
    assert run("biased", *joined, "--baseline", tmp_path / "fair").code == 1
    for bad in ("absent", "label", "sex,region"):  # missing, the label, constant
        out = run("fair", "--data", tmp_path / "all.parquet", "--sensitive", bad)
        assert out.code == 2 and len(out.err_lines) == 1, out.err
    one_class = tmp_path / "one.parquet"
    write_table(data.assign(label=1), one_class.as_uri())
    out = run("fair", "--data", one_class, "--sensitive", "sex")
    assert out.code == 2 and "single class" in out.err


def test_bins_make_bands_and_a_sensitive_model_input_warns(
    data: pd.DataFrame, models: dict[str, LoadedModel]
) -> None:
    frame = data.assign(age=np.random.default_rng(2).integers(18, 80, len(data)))
    config = FairnessConfig(bootstrap_resamples=200, bins={"age": [18, 40, 60, 120]})
    result, details = fairness_gate(frame, "label", ("age",), models["fair"], None, config)
    names = [g["group"] for g in details["columns"]["age"]["groups"]]
    assert names == ["[18, 40)", "[40, 60)", "[60, 120)"]
    assert result.verdict == Verdict.PASS
    with_input = fairness_gate(data, "label", ("female",), models["biased"], None, config)[0]
    assert any(f.get("kind") == "sensitive_input" for f in with_input.findings)
    with pytest.raises(ValueError, match="increasing"):
        FairnessConfig(bins={"age": [60, 18]})
