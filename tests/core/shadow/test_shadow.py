"""Shadow evaluation with real scikit-learn models saved by MLflow (skops) and loaded back."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.errors import DataError, PolicyError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.policy import parse_policy
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.shadow.gate import shadow_evaluate
from mlsecops_provider.core.shadow.models import LoadedModel, load_model, parse_model_uri
from mlsecops_provider.core.shadow.policy import ShadowConfig
from mlsecops_provider.core.shadow.report import render_html
from mlsecops_provider.core.shadow.stats import (
    AucIndex,
    Predictions,
    bootstrap_distributions,
    mcnemar,
    percentile_interval,
    point_metrics,
    psi,
)
from mlsecops_provider.core.training.model import TrainingConfig, train_classifier
from mlsecops_provider.include.generator import LABEL, generate

if TYPE_CHECKING:
    from tests.conftest import CliResult

FAST = {"bootstrap_resamples": 300, "robustness": {"samples": 60, "random_trials": 4}}
STRONG = ("debt_to_income", "loan_amount", "annual_income", "credit_history_months")
MEDIUM = ("loan_amount", "annual_income", "credit_history_months")


def config(**section: object) -> ShadowConfig:
    return ShadowConfig.from_section({**FAST, **section}, "test")


def save(model: object, path: Path) -> str:
    import mlflow

    mlflow.sklearn.save_model(
        model, str(path), serialization_format="skops", pip_requirements=["scikit-learn"]
    )
    return str(path)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Three classifiers trained on the same batch: strong, medium (no debt ratio), weak."""
    from sklearn.linear_model import LinearRegression

    root = tmp_path_factory.mktemp("models")
    train = generate(4000, seed=21)
    specs = {"strong": STRONG, "medium": MEDIUM, "weak": ("age",)}
    dirs = {}
    for name, numeric in specs.items():
        cfg = TrainingConfig(LABEL, numeric, categorical_features=("employment_type",))
        dirs[name] = save(train_classifier(train, cfg).model, root / name)
    reg = regression_frame(800, seed=5)
    dirs["reg_good"] = save(LinearRegression().fit(reg[["x1", "x2"]], reg["y"]), root / "rg")
    dirs["reg_poor"] = save(LinearRegression().fit(reg[["x1"]], reg["y"]), root / "rp")
    return dirs


@pytest.fixture(scope="module")
def models(model_dirs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("loaded")
    settings = Settings.from_env()
    return {
        name: load_model(settings, parse_model_uri(Path(path).as_uri()), str(root / name))
        for name, path in model_dirs.items()
    }


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return generate(3000, seed=22)


def regression_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    return pd.DataFrame({"x1": x1, "x2": x2, "y": 3 * x1 + 2 * x2 + rng.normal(0, 0.5, rows)})


def evaluate(
    frame: pd.DataFrame, cand: LoadedModel, champ: LoadedModel | None, **section: object
) -> tuple:
    return shadow_evaluate(frame, LABEL, cand, champ, config(**section))


# --- the gate -----------------------------------------------------------------------------


def test_better_candidate_passes_the_default_policy(models: dict, clean: pd.DataFrame) -> None:
    result, details = evaluate(clean, models["strong"], models["weak"])
    assert result.verdict is Verdict.PASS, result.message
    assert details["champion_status"] == "compared" and details["primary_metric"] == "roc_auc"
    assert result.metrics["delta.roc_auc.low"] > 0.05
    assert result.subjects["candidate"] == f"sha256:{models['strong'].digest}"
    assert 0 < result.metrics["disagreement_rate"] < 1 and result.metrics["score_psi"] > 0
    assert result.metrics["candidate.model_size_bytes"] > 0
    assert result.metrics["candidate.latency_us_per_row"] > 0
    assert details["comparison"]["mcnemar"]["method"].startswith("chi-square")


def test_worse_candidate_fails_naming_metric_and_slice(models: dict, clean: pd.DataFrame) -> None:
    result, _ = evaluate(clean, models["weak"], models["strong"])
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("roc_auc is worse than the champion: change -0.")
    sliced = [
        {
            "metric": "roc_auc",
            "change": {"tolerance": 0.01},
            "slice": {"column": "region", "value": "south"},
        }
    ]
    result, details = evaluate(clean, models["weak"], models["strong"], thresholds=sliced)
    assert result.verdict is Verdict.FAIL
    assert [f["threshold"] for f in result.findings] == ["roc_auc [region=south]"]
    assert "roc_auc [region=south] is worse than the champion" in result.message
    assert list(details["estimates"]) == ["all", "region=south"]


def test_suspicious_improvement_warns_or_fails_when_the_policy_blocks_it(
    models: dict, clean: pd.DataFrame
) -> None:
    change = {"max_improvement": 0.05, "use_interval": True}
    jump = [{"metric": "roc_auc", "change": change}]
    result, _ = evaluate(clean, models["strong"], models["weak"], thresholds=jump)
    assert result.verdict is Verdict.WARN  # a reviewer's look, not a block (the default)
    assert "roc_auc improved suspiciously" in result.message
    jump = [{"metric": "roc_auc", "change": {**change, "block_improvement": True}}]
    result, _ = evaluate(clean, models["strong"], models["weak"], thresholds=jump)
    assert result.verdict is Verdict.FAIL
    assert result.findings[0]["check"] == "max_improvement"
    assert "roc_auc improved suspiciously" in result.message
    relative = [{"metric": "log_loss", "change": {"measure": "relative", "max_improvement": 0.5}}]
    result, _ = evaluate(clean, models["strong"], models["weak"], thresholds=relative)
    assert result.verdict is Verdict.PASS, result.message  # log loss improves by far less


def test_slice_regression_hidden_by_a_good_overall_metric_fails(
    models: dict, clean: pd.DataFrame
) -> None:
    frame = clean.copy()
    north = frame["region"] == "north"  # the debt ratio arrives inverted in one region
    frame.loc[north, "debt_to_income"] = (
        frame.loc[north, "debt_to_income"].max() - frame.loc[north, "debt_to_income"]
    )
    thresholds = [
        {"metric": "roc_auc", "change": {"tolerance": 0.02, "use_interval": True}},
        {"metric": "roc_auc", "slice": {"column": "region"}, "change": {"tolerance": 0.02}},
    ]
    result, details = evaluate(frame, models["strong"], models["medium"], thresholds=thresholds)
    assert result.metrics["delta.roc_auc"] > 0  # better on all rows ...
    assert result.verdict is Verdict.FAIL  # ... but not in the north
    assert [f["threshold"] for f in result.findings] == ["roc_auc [region=north]"]
    statuses = {row["threshold"]: row["status"] for row in details["thresholds"]}
    assert statuses["roc_auc"] == "pass" and statuses["roc_auc [region=north]"] == "fail"
    assert len(statuses) == 6


def test_no_champion_applies_value_thresholds_only(models: dict, clean: pd.DataFrame) -> None:
    thresholds = [
        {"metric": "roc_auc", "lower": 0.6, "change": {"tolerance": 0.0}},
        {"metric": "accuracy", "upper": 0.99},
    ]
    result, details = evaluate(clean, models["strong"], None, thresholds=thresholds)
    assert result.verdict is Verdict.PASS, result.message
    assert details["champion_status"] == "none"
    assert "no champion yet: value thresholds only" in result.message
    assert details["thresholds"][0]["checks"][1]["status"] == "skipped"
    assert "champion.roc_auc" not in result.metrics and "disagreement_rate" not in result.metrics
    strict = [{"metric": "roc_auc", "lower": 0.95}]
    result, _ = evaluate(clean, models["strong"], None, thresholds=strict)
    assert result.verdict is Verdict.FAIL and "below lower bound 0.95" in result.message


def test_candidate_that_is_the_champion_is_checked_on_values(
    models: dict, clean: pd.DataFrame
) -> None:
    result, details = evaluate(clean, models["strong"], models["strong"])
    assert result.verdict is Verdict.PASS
    assert details["champion_status"] == "same"
    assert "the candidate is the champion" in details["note"]
    assert "the candidate is the champion" in render_html(result, details)


def test_regression_models_use_rmse(models: dict) -> None:
    frame = regression_frame(600, seed=6)
    ok, details = shadow_evaluate(frame, "y", models["reg_good"], models["reg_poor"], config())
    assert ok.verdict is Verdict.PASS and details["task"] == "regression"
    assert ok.metrics["delta.rmse.high"] < 0  # lower is better
    bad, _ = shadow_evaluate(frame, "y", models["reg_poor"], models["reg_good"], config())
    assert bad.verdict is Verdict.FAIL and "rmse is worse than the champion" in bad.message
    assert "robustness.candidate.fooling_rate" in bad.metrics


def test_missing_label_and_columns_are_data_errors(models: dict, clean: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="dataset has no label column 'defaulted'"):
        shadow_evaluate(clean, "defaulted", models["strong"], None, config())
    with pytest.raises(DataError, match=r"lacks column\(s\) \['debt_to_income'\]"):
        evaluate(clean.drop(columns=["debt_to_income"]), models["strong"], None)


def test_robustness_limits_fail_the_gate(models: dict, clean: pd.DataFrame) -> None:
    rob = {"epsilon": 1.0, "samples": 80, "random_trials": 8, "max_fooling_rate": 0.0}
    result, details = evaluate(clean, models["strong"], models["weak"], robustness=rob)
    candidate = details["robustness"]["candidate"]
    assert candidate["fooling_rate"] > candidate["random_fooling_rate"] * 0.99 > 0
    assert details["robustness"]["champion"]["rows"] == 80
    assert result.verdict is Verdict.FAIL
    assert result.findings[-1]["metric"] == "robustness.fooling_rate"
    small = {"epsilon": 0.01, "samples": 80, "max_accuracy_drop": 0.2}
    result, details = evaluate(clean, models["strong"], models["weak"], robustness=small)
    assert result.verdict is Verdict.PASS
    assert details["robustness"]["candidate"]["accuracy_drop"] <= 0.2


def test_html_report_escapes_everything(models: dict, clean: pd.DataFrame) -> None:
    frame = clean.copy()
    frame.loc[frame["region"] == "north", "region"] = "<script>alert(1)</script>"
    thresholds = [{"metric": "accuracy", "lower": 0.5, "slice": {"column": "region"}}]
    result, details = evaluate(frame, models["strong"], models["weak"], thresholds=thresholds)
    page = render_html(result, details)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "data:image/png;base64," in page and "<table>" in page


# --- statistics ---------------------------------------------------------------------------


def test_point_metrics_and_weighted_auc_match_scikit_learn() -> None:
    from sklearn import metrics

    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.3).astype(np.int64)
    scores = np.round(rng.random(2000) * 0.6 + 0.3 * y, 2)  # many ties
    labels = (scores >= 0.5).astype(np.int64)
    point = point_metrics("classification", y, [Predictions(labels, scores)])[0]
    assert point["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, scores), abs=1e-12)
    assert point["log_loss"] == pytest.approx(metrics.log_loss(y, scores), abs=1e-9)
    assert point["brier"] == pytest.approx(metrics.brier_score_loss(y, scores), abs=1e-12)
    assert point["f1"] == pytest.approx(metrics.f1_score(y, labels), abs=1e-12)
    assert point["precision"] == pytest.approx(metrics.precision_score(y, labels), abs=1e-12)
    weights = rng.integers(0, 4, 2000).astype(np.int32)
    expected = metrics.roc_auc_score(y, scores, sample_weight=weights)
    assert AucIndex(y, scores).auc(weights) == pytest.approx(expected, abs=1e-12)


def coverage(make: object, metric: str, truth: float, reps: int = 40) -> float:
    hits = 0
    for rep in range(reps):
        y, cand, champ = make(np.random.default_rng(100 + rep))  # type: ignore[operator]
        draws = bootstrap_distributions("classification", y, [cand, champ], {"all": None}, 200, rep)
        low, high = percentile_interval(draws["all"][0][metric] - draws["all"][1][metric], 0.95)
        hits += low <= truth <= high
    return hits / reps


def test_paired_bootstrap_interval_covers_the_true_delta() -> None:
    def accuracy_case(rng: np.random.Generator) -> tuple:
        n = 600
        y = rng.integers(0, 2, n)
        preds = []
        for p_correct in (0.80, 0.75):
            labels = np.where(rng.random(n) < p_correct, y, 1 - y)
            preds.append(Predictions(labels, labels.astype(float)))
        return y, *preds

    def auc_case(rng: np.random.Generator) -> tuple:
        n = 500
        y = rng.integers(0, 2, n)
        preds = []
        for shift in (1.5, 1.0):  # binormal: AUC = Phi(shift / sqrt(2))
            scores = rng.normal(size=n) + shift * y
            preds.append(Predictions((scores > shift / 2).astype(int), scores))
        return y, *preds

    phi = lambda x: 0.5 * (1 + math.erf(x / 2))  # noqa: E731 - Phi(x / sqrt 2)
    assert coverage(accuracy_case, "accuracy", 0.05) >= 0.85
    assert coverage(auc_case, "roc_auc", phi(1.5) - phi(1.0)) >= 0.85


def test_bootstrap_is_reproducible_and_paired() -> None:
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 400)
    labels = np.where(rng.random(400) < 0.3, 1 - y, y)
    pred = Predictions(labels, np.clip(labels + rng.normal(0, 0.2, 400), 0, 1))
    draws = bootstrap_distributions("classification", y, [pred, pred], {"all": None}, 100, 7)
    again = bootstrap_distributions("classification", y, [pred, pred], {"all": None}, 100, 7)
    assert np.array_equal(draws["all"][0]["log_loss"], again["all"][0]["log_loss"])
    assert np.std(draws["all"][0]["accuracy"]) > 0.01
    assert np.array_equal(draws["all"][0]["accuracy"], draws["all"][1]["accuracy"])  # same rows
    assert np.array_equal(draws["all"][0]["roc_auc"], draws["all"][1]["roc_auc"])
    assert np.allclose(draws["all"][0]["brier"], draws["all"][1]["brier"], rtol=1e-6, atol=0)


def test_mcnemar_on_known_tables() -> None:
    from scipy import stats

    exact = mcnemar(1, 9)  # two-sided binomial: 2 * (1 + 10) / 2**10
    assert exact.method == "exact binomial" and exact.p_value == pytest.approx(11 / 512)
    large = mcnemar(121, 59)  # (|121 - 59| - 1)^2 / 180
    assert large.method == "chi-square, corrected"
    assert large.statistic == pytest.approx(61**2 / 180)
    assert large.p_value == pytest.approx(math.erfc(math.sqrt(large.statistic / 2)))
    assert large.p_value == pytest.approx(stats.chi2.sf(20.672, 1), rel=1e-3)
    assert mcnemar(0, 0).p_value == 1.0
    assert mcnemar(12, 12).p_value == 1.0  # 24 discordant pairs: still exact


def test_psi_of_identical_and_shifted_scores() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(size=5000)
    assert psi(base, rng.normal(size=5000)) < 0.02
    assert psi(base, rng.normal(0.5, 1.0, 5000)) > 0.1


# --- policy -------------------------------------------------------------------------------


def test_policy_section_parses_nested_thresholds() -> None:
    policy = parse_policy(
        {
            "gates": {
                "shadow_evaluation": {
                    "primary_metric": "accuracy",
                    "mcnemar_alpha": 0.05,
                    "thresholds": [
                        {"metric": "roc_auc", "lower": 0.6, "slice": {"column": "region",
                                                                     "value": "north"}},
                        {"metric": "log_loss", "change": {"direction": "LOWER_IS_BETTER",
                                                          "measure": "relative",
                                                          "tolerance": 0.05}},
                    ],
                    "robustness": {"epsilon": 0.05, "max_fooling_rate": 0.2},
                }
            }
        },
        "p.yaml",
    )  # fmt: skip
    parsed = ShadowConfig.from_policy(policy)
    assert parsed.thresholds is not None and parsed.thresholds[0].slice is not None
    assert parsed.thresholds[0].slice.value == "north"
    assert parsed.thresholds[1].change is not None
    assert parsed.thresholds[1].change.measure == "relative"
    assert parsed.thresholds[1].change.direction == "lower_is_better"
    assert parsed.robustness.max_fooling_rate == 0.2
    assert ShadowConfig().effective_thresholds("regression")[0].metric == "rmse"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"metric": "auc"}, r"thresholds\[0\] \(auc\): metric: unknown metric 'auc'"),
        ({"metric": "roc_auc"}, r"thresholds\[0\] \(roc_auc\): needs at least one of"),
        (
            {"metric": "roc_auc", "change": {"direction": "up"}},
            r"thresholds\[0\] \(roc_auc\)\.change: direction: must be one of",
        ),
        (
            {"metric": "roc_auc", "lower": 0.5, "slice": {"col": "region"}},
            r"thresholds\[0\] \(roc_auc\)\.slice: unknown field\(s\) \['col'\]",
        ),
        ("roc_auc", r"thresholds\[0\]: must be a mapping"),
        (
            {"metric": "disagreement_rate", "change": {}},
            r"thresholds\[0\] \(disagreement_rate\): disagreement_rate compares the",
        ),
    ],
)
def test_malformed_threshold_is_a_policy_error_naming_the_entry(
    entry: object, message: str
) -> None:
    policy = parse_policy({"gates": {"shadow_evaluation": {"thresholds": [entry]}}}, "p.yaml")
    with pytest.raises(PolicyError, match=rf"p.yaml: gates.shadow_evaluation.{message}"):
        ShadowConfig.from_policy(policy)


def test_other_policy_errors_name_the_field() -> None:
    with pytest.raises(PolicyError, match=r"robustness: epsilon: must be above 0"):
        ShadowConfig.from_section({"robustness": {"epsilon": 0}}, "x")
    with pytest.raises(PolicyError, match=r"x: confidence: must be between"):
        ShadowConfig.from_section({"confidence": 1.5}, "x")
    with pytest.raises(PolicyError, match=r"'rmse' is not a metric of a classification model"):
        ShadowConfig(thresholds=({"metric": "rmse", "upper": 1.0},)).effective_thresholds(
            "classification"
        )


# --- CLI (as a user runs it: the shared ``cli`` fixture) ----------------------------------


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory: pytest.TempPathFactory, clean: pd.DataFrame) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli")
    data = root / "batch.parquet"
    write_table(clean, data.as_uri())
    policy = root / "policy.yaml"
    policy.write_text(json.dumps({"gates": {"shadow_evaluation": FAST}}))  # JSON is YAML
    return {"data": str(data), "policy": str(policy)}


def test_cli_exit_codes(
    model_dirs: dict[str, str],
    cli_files: dict[str, str],
    tmp_path: Path,
    cli: Callable[..., CliResult],
) -> None:
    base = ["shadow-eval", "--data", cli_files["data"], "--label", LABEL, "--policy",
            cli_files["policy"]]  # fmt: skip
    report, page = tmp_path / "r.json", tmp_path / "r.html"
    argv = [*base, "--candidate", model_dirs["strong"], "--baseline", model_dirs["weak"]]
    done = cli([*argv, "--report", str(report), "--html", str(page)])
    assert done.code == 0
    assert done.out.startswith("shadow_evaluation: PASS")
    stored = json.loads(report.read_text())
    assert stored["result"]["subjects"]["data"].startswith("sha256:")
    assert "<img alt=" in page.read_text()
    argv = [*base, "--candidate", model_dirs["weak"], "--baseline", model_dirs["strong"]]
    done = cli([*argv, "--json"])
    assert done.code == 1
    assert json.loads(done.out)["verdict"] == "fail"
    done = cli([*base, "--candidate", model_dirs["strong"]])
    assert done.code == 0
    assert "no champion yet" in done.out


def test_cli_missing_label_is_exit_2_with_one_line(
    model_dirs: dict[str, str], cli_files: dict[str, str], cli: Callable[..., CliResult]
) -> None:
    argv = ["shadow-eval", "--data", cli_files["data"], "--label", "defaulted", "--candidate",
            model_dirs["strong"], "--baseline", model_dirs["weak"]]  # fmt: skip
    done = cli(argv)
    assert done.code == 2
    err = done.err.strip()
    assert err.startswith("mlsecops shadow-eval: error: dataset has no label column 'defaulted'")
    assert len(err.splitlines()) == 1
    missing = ["shadow-eval", "--data", cli_files["data"], "--label", LABEL, "--candidate",
               "/nonexistent/model"]  # fmt: skip
    assert cli(missing).code == 2


def test_untrusted_skops_types_are_refused(tmp_path: Path, clean: pd.DataFrame) -> None:
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(func=np.load)  # a callable that reads files: not allowlisted
    path = tmp_path / "fn"
    import mlflow

    mlflow.sklearn.save_model(
        model.fit(clean[["age"]]), str(path), serialization_format="skops",
        skops_trusted_types=["numpy.load"], pip_requirements=["scikit-learn"],
    )  # fmt: skip
    with pytest.raises(DataError, match=r"outside the allowlist \['numpy.load'\]"):
        load_model(Settings.from_env(), parse_model_uri(path.as_uri()), str(tmp_path / "x"))


def test_light_import() -> None:
    import subprocess

    code = (
        "import sys\n"
        "from mlsecops_provider.core.shadow import gate as shadow, robustness\n"
        "from mlsecops_provider.core.shadow import report as shadow_report\n"
        "from mlsecops_provider.core.cli import shadow_eval_cmd\n"
        "heavy = {'mlflow', 'sklearn', 'numpy', 'pandas', 'scipy', 'matplotlib'}\n"
        "assert not heavy & set(sys.modules), heavy & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
