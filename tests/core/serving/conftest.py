"""Small real models for the serving tests: sklearn pipelines saved by MLflow as skops,
loaded through the same in-memory path as the server; hand-written fakes for slow or
crashing models."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.hashing import hash_path
from mlsecops_provider.core.serving.loading import ServedModel, pyfunc_from_files

COLUMNS = ("age", "income", "segment")


def training_frame(rows: int = 200, seed: int = 0) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows).astype("int64"),
            "income": rng.normal(50_000, 10_000, rows).round(2),
            "segment": rng.choice(["retail", "business", "student"], rows),
        }
    )
    frame["default"] = ((frame["income"] < 48_000) ^ (frame["segment"] == "student")).astype(int)
    return frame


def fit(frame: Any, flip: bool = False) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    label = 1 - frame["default"] if flip else frame["default"]
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["segment"]),
        ]
    )
    return Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(
        frame[list(COLUMNS)], label
    )


def save(model: Any, folder: Path, example: Any) -> Path:
    import mlflow

    mlflow.sklearn.save_model(
        model,
        str(folder),
        serialization_format="skops",
        input_example=example,
        pip_requirements=["scikit-learn"],
    )
    return folder


def served(folder: Path, role: str, version: str) -> ServedModel:
    files = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    pyfunc = pyfunc_from_files(files, f"{role} v{version}")
    digest = hash_path(folder).root_digest
    return ServedModel(role, "credit", version, role, digest, pyfunc, files)


class SlowModel:
    """Delegates to a real model after ``delay`` seconds (a slow champion or shadow):
    sleeping, or computing (``busy``) as a model that costs more would."""

    def __init__(self, inner: Any, delay: float, busy: bool = False) -> None:
        self.inner, self.delay, self.busy, self.metadata = inner, delay, busy, inner.metadata

    def predict(self, data: Any) -> Any:
        if self.busy:
            deadline = time.thread_time() + self.delay
            while time.thread_time() < deadline:
                sum(range(1000))
        else:
            time.sleep(self.delay)
        return self.inner.predict(data)


class CrashingModel:
    """Raises on every prediction (a broken champion or shadow)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.metadata, self.calls = inner, inner.metadata, 0
        self._lock = threading.Lock()

    def predict(self, data: Any) -> Any:
        with self._lock:
            self.calls += 1
        raise RuntimeError("model crashed")


def wrapped(model: ServedModel, fake: Callable[[Any], Any]) -> ServedModel:
    return ServedModel(
        model.role, model.name, model.version, model.alias, model.digest, fake(model.pyfunc)
    )


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """champion v2, fallback v1 (an older fit), an agreeing and a disagreeing shadow."""
    root = tmp_path_factory.mktemp("serving-models")
    train = training_frame()
    example = train[list(COLUMNS)].head(3)
    champion_model = fit(train)
    return {
        "train": train,
        "champion": served(save(champion_model, root / "champion", example), "champion", "2"),
        "fallback": served(
            save(fit(train.iloc[:120]), root / "fallback", example), "fallback", "1"
        ),
        "shadow": served(save(champion_model, root / "shadow", example), "shadow", "3"),
        "bad_shadow": served(save(fit(train, flip=True), root / "bad", example), "shadow", "4"),
    }


def request_rows(rows: int = 5, seed: int = 1) -> list[dict[str, Any]]:
    frame = training_frame(rows, seed)
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in frame[list(COLUMNS)].to_dict("records")
    ]
