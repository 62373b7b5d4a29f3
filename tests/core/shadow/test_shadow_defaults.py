"""The shipped policy's shadow defaults: a better candidate passes, a suspicious jump warns."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.policy import load_policy, parse_policy
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.shadow.gate import shadow_evaluate
from mlsecops_provider.core.shadow.models import LoadedModel, load_model, parse_model_uri
from mlsecops_provider.core.shadow.policy import (
    ChangeSpec,
    Estimate,
    ShadowConfig,
    Threshold,
    check_threshold,
)

JUMP = Threshold("roc_auc", change=ChangeSpec(use_interval=True, max_improvement=0.2))


def test_a_jump_above_max_improvement_warns_unless_the_policy_blocks_it() -> None:
    jump = Estimate(0.94, 0.72, delta=0.22, delta_ci=(0.205, 0.235))
    row = check_threshold(JUMP, "roc_auc", jump, compared=True, confidence=0.95)
    assert row["status"] == "warn"
    flagged = [c for c in row["checks"] if c["check"] == "max_improvement"][0]
    assert "improved suspiciously" in flagged["message"] and flagged["bound"] == 0.2
    blocking = replace(JUMP, change=replace(JUMP.change, block_improvement=True))
    assert check_threshold(blocking, "roc_auc", jump, True, 0.95)["status"] == "fail"
    inside = Estimate(0.94, 0.72, delta=0.22, delta_ci=(0.15, 0.29))  # the CI reaches the cap
    assert check_threshold(JUMP, "roc_auc", inside, True, 0.95)["status"] == "pass"
    section = {"thresholds": [{"metric": "roc_auc", "change": {"block_improvement": True}}]}
    parsed = ShadowConfig.from_section(section, "p.yaml")
    assert parsed.thresholds and parsed.thresholds[0].change.block_improvement  # type: ignore[union-attr]


def test_the_shipped_robustness_limits_are_relative_to_the_champion() -> None:
    shipped = ShadowConfig.from_policy(load_policy())
    assert shipped.robustness.max_fooling_rate is None
    assert shipped.robustness.max_accuracy_drop is None
    assert shipped.robustness.max_fooling_rate_increase is not None


def table(rows: int, seed: int) -> pd.DataFrame:
    """Not the demo's data: ``x1`` decides the label, ``x2`` is a noisy copy, ``z`` is noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x1 + rng.normal(0, 1.0, rows),
            "z": rng.normal(size=rows),
            "churned": (x1 + rng.normal(0, 0.5, rows) > 0.3).astype(int),
        }
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LoadedModel]:
    """Logistic regressions on one column each (skops, as the DAG logs models)."""
    import mlflow
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    root = tmp_path_factory.mktemp("default-models")
    train = table(3000, seed=1)
    loaded = {}
    for name, column in (("strong", "x1"), ("medium", "x2"), ("noise", "z")):
        select = ColumnTransformer([("one", "passthrough", [column])])
        model = Pipeline([("select", select), ("lr", LogisticRegression())])
        model.fit(train[["x1", "x2", "z"]], train["churned"])
        path = root / name
        mlflow.sklearn.save_model(
            model, str(path), serialization_format="skops", pip_requirements=["scikit-learn"]
        )
        uri = parse_model_uri(Path(path).as_uri())
        loaded[name] = load_model(Settings.from_env(), uri, str(root / f"{name}-x"))
    return loaded


@pytest.fixture(scope="module")
def shipped() -> ShadowConfig:
    """The shipped policy, with fewer resamples and robustness rows to keep the test short."""
    config = ShadowConfig.from_policy(load_policy())
    robustness = replace(config.robustness, samples=80, random_trials=4)
    return replace(config, bootstrap_resamples=300, robustness=robustness)


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    return table(1500, seed=2)


def test_a_clearly_better_candidate_passes_the_shipped_policy(
    models: dict[str, LoadedModel], shipped: ShadowConfig, holdout: pd.DataFrame
) -> None:
    result, _ = shadow_evaluate(holdout, "churned", models["strong"], models["medium"], shipped)
    assert result.metrics["delta.roc_auc.low"] > 0, result.message  # significantly better
    assert result.metrics["delta.roc_auc"] < 0.2
    assert result.verdict is Verdict.PASS, result.message


def test_a_suspicious_jump_is_a_warning_with_its_reason(
    models: dict[str, LoadedModel], shipped: ShadowConfig, holdout: pd.DataFrame
) -> None:
    result, _ = shadow_evaluate(holdout, "churned", models["strong"], models["noise"], shipped)
    assert result.metrics["delta.roc_auc.low"] > 0.2, result.message
    assert result.verdict is Verdict.WARN, result.message
    assert "improved suspiciously" in result.message
    assert result.metrics["thresholds_warned"] == 1 and result.metrics["thresholds_failed"] == 0
    assert [f["severity"] for f in result.findings] == ["warn"]
    blocking = parse_policy(
        {
            "gates": {
                "shadow_evaluation": {
                    "thresholds": [
                        {
                            "metric": "roc_auc",
                            "change": {"max_improvement": 0.2, "block_improvement": True},
                        }
                    ]
                }
            }
        }  # fmt: skip
    )
    config = replace(ShadowConfig.from_policy(blocking), bootstrap_resamples=300)
    config = replace(config, robustness=shipped.robustness)
    result, _ = shadow_evaluate(holdout, "churned", models["strong"], models["noise"], config)
    assert result.verdict is Verdict.FAIL
