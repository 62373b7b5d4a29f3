"""The explainability gate on generated data whose truth is known, with real sklearn and SHAP."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlsecops_provider.core.errors import DataError, PolicyError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.explain.config import ExplainConfig
from mlsecops_provider.core.explain.gate import explain_gate
from mlsecops_provider.core.explain.report import render_html, render_svg
from mlsecops_provider.core.policy import parse_policy
from mlsecops_provider.core.shadow.models import LoadedModel, ModelIdentity

NUMERIC = ("driver", "weak", "noise_a", "noise_b", "sex_code")
CATEGORICAL = ("city",)
FAST = ExplainConfig(time_budget_seconds=5.0, max_rows=400)


def known_truth(rows: int = 1500, seed: int = 0) -> pd.DataFrame:
    """``driver`` decides the label, ``weak`` a little, ``city`` (one-hot) a bit, noise nothing."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "driver": rng.normal(size=rows),
            "weak": rng.normal(size=rows),
            "noise_a": rng.normal(size=rows),
            "noise_b": rng.normal(size=rows),
            "constant": np.zeros(rows),
            "sex": rng.choice(["female", "male"], rows),
            "city": rng.choice(["a", "b", "c", "d"], rows),
        }
    )
    frame["sex_code"] = (frame["sex"] == "female").astype(float)
    z = 3.0 * frame["driver"] + 0.5 * frame["weak"] + frame["city"].map({"a": 0.6}).fillna(0.0)
    frame["label"] = (z + rng.normal(scale=0.5, size=rows) > 0).astype("int64")
    return frame


def pipeline(numeric: tuple[str, ...], categorical: tuple[str, ...], estimator: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts: list[Any] = [("num", StandardScaler(), list(numeric))]
    if categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        parts.append(("cat", encoder, list(categorical)))
    return Pipeline([("pre", ColumnTransformer(parts)), ("model", estimator)])


def loaded(model: Any, columns: tuple[str, ...], name: str = "m") -> LoadedModel:
    digest = f"{abs(hash((name, id(model)))):064d}"[:64]
    identity = ModelIdentity(f"file:///models/{name}")
    return LoadedModel(identity, "/models", 0, digest, "sklearn", model, columns)


def fitted(frame: pd.DataFrame, estimator: Any, numeric: tuple[str, ...] = NUMERIC) -> Any:
    features = numeric + CATEGORICAL
    model = pipeline(numeric, CATEGORICAL, estimator).fit(frame[list(features)], frame["label"])
    return loaded(model, features, type(estimator).__name__)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return known_truth()


@pytest.fixture(scope="module")
def models(data: pd.DataFrame) -> dict[str, LoadedModel]:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    return {
        "gbm": fitted(data, GradientBoostingClassifier(n_estimators=50, max_depth=3)),
        "forest": fitted(data, RandomForestClassifier(n_estimators=30, random_state=0)),
        "linear": fitted(data, LogisticRegression()),
        "knn": fitted(data, KNeighborsClassifier(15)),
    }


@pytest.mark.parametrize(
    ("name", "method"),
    [("gbm", "tree"), ("forest", "tree"), ("linear", "linear"), ("knn", "permutation")],
)
def test_the_feature_that_drives_the_label_ranks_first(
    models: dict[str, LoadedModel], data: pd.DataFrame, name: str, method: str
) -> None:
    result, details = explain_gate(data, "label", models[name], None, FAST)
    importance = details["importance"]
    assert details["explainers"]["candidate"]["method"] == method
    assert importance[0]["feature"] == "driver"
    assert importance[0]["share"] > 0.4
    values = [r["mean_abs_shap"] for r in importance]
    assert values == sorted(values, reverse=True)
    assert sum(r["share"] for r in importance) == pytest.approx(1.0)
    # one entry per input column, before encoding: the one-hot columns summed back to "city"
    assert sorted(r["feature"] for r in importance) == sorted(NUMERIC + CATEGORICAL)
    assert result.verdict == Verdict.PASS
    assert result.metrics["top_feature"] == "driver"


def test_one_hot_attributions_sum_back_to_the_source_column(
    models: dict[str, LoadedModel], data: pd.DataFrame
) -> None:
    import shap

    model = models["linear"].model
    pre, est = model[:-1], model[-1]
    encoded = pre.transform(data[list(NUMERIC + CATEGORICAL)])
    background = shap.maskers.Independent(encoded[:50], max_samples=50)
    raw = shap.LinearExplainer(est, background).shap_values(encoded[:300])
    expected_city = np.abs(raw[:, len(NUMERIC) :].sum(axis=1)).mean()
    config = ExplainConfig(min_rows=300, max_rows=300, background_rows=50, seed=0)
    rows = np.random.default_rng(0).permutation(len(data))
    ordered = data.iloc[rows].reset_index(drop=True)  # the gate's own shuffle, undone
    _, details = explain_gate(ordered.iloc[np.argsort(rows)], "label", models["linear"], None,
                              config)  # fmt: skip
    city = next(r for r in details["importance"] if r["feature"] == "city")
    assert details["rows_explained"] == 300
    assert city["mean_abs_shap"] == pytest.approx(expected_city, rel=0.35)


def test_a_model_using_a_forbidden_feature_fails(data: pd.DataFrame) -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    biased = data.copy()
    biased["label"] = (biased["sex_code"] + 0.3 * biased["driver"] > 0.5).astype("int64")
    model = fitted(biased, GradientBoostingClassifier(n_estimators=40, max_depth=3))
    result, details = explain_gate(biased, "label", model, None, FAST, forbid=("sex_code",))
    assert result.verdict == Verdict.FAIL
    assert details["importance"][0]["feature"] == "sex_code"
    assert details["forbidden"][0]["status"] == "fail"
    assert "sex_code" in result.message


def test_forbidden_feature_the_model_does_not_use_passes(
    models: dict[str, LoadedModel], data: pd.DataFrame
) -> None:
    config = ExplainConfig(time_budget_seconds=5.0, max_rows=300, forbidden_features=("sex",))
    result, details = explain_gate(data, "label", models["gbm"], None, config, ("sex_code",))
    statuses = {f["feature"]: f["status"] for f in details["forbidden"]}
    assert statuses == {"sex": "not a model input", "sex_code": "pass"}
    assert result.verdict == Verdict.PASS


def test_zero_attribution_features_are_candidates_to_drop(data: pd.DataFrame) -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    numeric = (*NUMERIC, "constant")
    model = fitted(data, GradientBoostingClassifier(n_estimators=30), numeric)
    _, details = explain_gate(data, "label", model, None, FAST)
    assert "constant" in details["drop_candidates"]
    assert "driver" not in details["drop_candidates"]


def test_drift_from_the_champion_warns_by_default_and_fails_when_asked(
    models: dict[str, LoadedModel], data: pd.DataFrame
) -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    other = data.copy()
    other["label"] = (other["noise_a"] - 0.2 * other["noise_b"] > 0).astype("int64")
    champion = fitted(other, GradientBoostingClassifier(n_estimators=30, max_depth=2))
    result, details = explain_gate(data, "label", models["gbm"], champion, FAST)
    drift = details["drift"]
    assert result.verdict == Verdict.WARN
    assert drift["rank_correlation"] < 0.5
    assert drift["moved_most"][0]["feature"] in ("driver", "noise_a")
    assert details["champion_importance"][0]["feature"] == "noise_a"
    strict = ExplainConfig(time_budget_seconds=5.0, max_rows=300, drift_action="fail")
    assert explain_gate(data, "label", models["gbm"], champion, strict)[0].verdict == Verdict.FAIL


def test_same_model_as_champion_shows_no_drift(
    models: dict[str, LoadedModel], data: pd.DataFrame
) -> None:
    twin = loaded(models["gbm"].model, models["gbm"].input_columns or (), "twin")
    result, details = explain_gate(data, "label", models["gbm"], twin, FAST)
    assert details["drift"]["rank_correlation"] == pytest.approx(1.0)
    assert details["drift"]["top_k_overlap"] == 1.0
    assert result.verdict == Verdict.PASS


def test_sample_size_fits_the_time_budget_for_a_full_depth_forest() -> None:
    from sklearn.ensemble import RandomForestClassifier

    frame = known_truth(3000, seed=3)
    model = fitted(frame, RandomForestClassifier(n_estimators=40, random_state=0))  # full depth
    config = ExplainConfig(time_budget_seconds=2.0, min_rows=20, max_rows=3000)
    started = time.perf_counter()
    _, details = explain_gate(frame, "label", model, None, config)
    elapsed = time.perf_counter() - started
    assert details["rows_explained"] < 3000
    assert elapsed < 2.0 * 3  # budget plus calibration and a loaded machine
    assert details["importance"][0]["feature"] == "driver"


def test_bad_input_is_a_data_error(models: dict[str, LoadedModel], data: pd.DataFrame) -> None:
    one_class = data.assign(label=1)
    with pytest.raises(DataError, match="single class"):
        explain_gate(one_class, "label", models["gbm"], None, FAST)
    with pytest.raises(DataError, match="cannot be explained"):
        explain_gate(data, "label", models["knn"], None, ExplainConfig(explainer="tree"))
    with pytest.raises(DataError, match="lacks column"):
        explain_gate(data.drop(columns=["weak"]), "label", models["gbm"], None, FAST)
    with pytest.raises(DataError, match="no label column"):
        explain_gate(data, "absent", models["gbm"], None, FAST)


def test_policy_errors_name_the_field() -> None:
    policy = parse_policy({"version": 1, "gates": {"explainability": {"drift_action": "stop"}}})
    with pytest.raises(PolicyError, match="drift_action"):
        ExplainConfig.from_policy(policy)
    policy = parse_policy({"version": 1, "gates": {"explainability": {"top_kk": 3}}})
    with pytest.raises(PolicyError, match="top_kk"):
        ExplainConfig.from_policy(policy)


def test_svg_and_html_are_escaped_and_script_free(
    models: dict[str, LoadedModel], data: pd.DataFrame
) -> None:
    renamed = data.rename(columns={"weak": "<script>x</script>"})
    numeric = ("driver", "<script>x</script>", "noise_a")
    from sklearn.linear_model import LogisticRegression

    model = pipeline(numeric, (), LogisticRegression()).fit(
        renamed[list(numeric)], renamed["label"]
    )
    result, details = explain_gate(renamed, "label", loaded(model, numeric), None, FAST)
    svg = render_svg(details)
    ET.fromstring(svg)  # well-formed XML
    page = render_html(result, details)
    assert "<script" not in svg and "<script" not in page


def test_cli_exit_codes_and_report(tmp_path: Path, data: pd.DataFrame, cli: Any) -> None:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    from mlsecops_provider.core.data.datasets import write_table

    features = NUMERIC + CATEGORICAL
    model = pipeline(NUMERIC, CATEGORICAL, LogisticRegression())
    model.fit(data[list(features)], data["label"])
    mlflow.sklearn.save_model(model, str(tmp_path / "m"), serialization_format="skops")
    write_table(data, (tmp_path / "d.parquet").as_uri())
    policy = tmp_path / "p.yaml"
    policy.write_text(json.dumps({"gates": {"explainability": {"max_rows": 300}}}))
    base = ["explain", "--model", tmp_path / "m", "--data", tmp_path / "d.parquet",
            "--label", "label", "--policy", policy]  # fmt: skip
    ok = cli([*base, "--report", tmp_path / "r.json", "--html", tmp_path / "r.html"])
    assert ok.code == 0, ok.err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["importance"][0]["feature"] == "driver"
    assert set(report["importance"][0]) == {"feature", "mean_abs_shap", "share"}
    assert "<svg" in (tmp_path / "r.html").read_text()
    assert cli([*base, "--forbid", "driver"]).code == 1
    bad = cli([*base[:-4], "--label", "absent", "--policy", policy])
    assert bad.code == 2 and len(bad.err_lines) == 1
