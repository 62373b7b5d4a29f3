"""Train the demo's scikit-learn classifier on a table and measure it on a holdout split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline


@dataclass(frozen=True)
class TrainingConfig:
    """What to learn from: the label, the feature columns and the model's settings."""

    label: str
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...] = ()
    test_size: float = 0.25
    random_state: int = 42
    hyperparameters: dict[str, Any] = field(default_factory=lambda: {"C": 1.0, "max_iter": 500})

    def __post_init__(self) -> None:
        if not self.numeric_features and not self.categorical_features:
            raise DataError("training needs at least one feature column")
        if not 0.0 < self.test_size < 1.0:
            raise DataError(f"test_size must be between 0 and 1, got {self.test_size}")

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric_features + self.categorical_features


@dataclass(frozen=True)
class TrainingOutcome:
    model: Pipeline
    metrics: dict[str, float]
    train_rows: int
    test_rows: int
    holdout_index: Any = None  # the frame's index labels of the holdout rows


def check_columns(frame: pd.DataFrame, config: TrainingConfig) -> None:
    missing = [c for c in (*config.features, config.label) if c not in frame.columns]
    if missing:
        raise DataError(f"training data lacks column(s) {missing}")
    if frame[config.label].nunique() < 2:
        raise DataError(f"label column {config.label!r} has fewer than two classes")


def build_pipeline(config: TrainingConfig) -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    transformers: list[tuple[str, Any, list[str]]] = [
        ("numeric", StandardScaler(), list(config.numeric_features))
    ]
    if config.categorical_features:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        transformers.append(("categorical", encoder, list(config.categorical_features)))
    classifier = LogisticRegression(random_state=config.random_state, **config.hyperparameters)
    return Pipeline([("features", ColumnTransformer(transformers)), ("classifier", classifier)])


def train_classifier(frame: pd.DataFrame, config: TrainingConfig) -> TrainingOutcome:
    """Fit on a stratified split and report accuracy, ROC AUC, precision, recall and F1."""
    from sklearn import metrics
    from sklearn.model_selection import train_test_split

    check_columns(frame, config)
    x = frame[list(config.features)]
    y = frame[config.label]
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=config.test_size, random_state=config.random_state, stratify=y
    )
    model = build_pipeline(config).fit(x_train, y_train)
    predicted = model.predict(x_test)
    scores = model.predict_proba(x_test)[:, 1]
    results = {
        "accuracy": metrics.accuracy_score(y_test, predicted),
        "roc_auc": metrics.roc_auc_score(y_test, scores),
        "precision": metrics.precision_score(y_test, predicted, zero_division=0),
        "recall": metrics.recall_score(y_test, predicted, zero_division=0),
        "f1": metrics.f1_score(y_test, predicted, zero_division=0),
    }
    return TrainingOutcome(
        model,
        {k: float(v) for k, v in results.items()},
        len(x_train),
        len(x_test),
        x_test.index,
    )
