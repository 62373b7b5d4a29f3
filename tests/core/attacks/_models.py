"""Generated data and real scikit-learn models for the attack tests (small: a 2-core machine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlsecops_provider.core.shadow.models import LoadedModel, ModelIdentity

LABEL = "y"


def loaded(model: Any, name: str) -> LoadedModel:
    """A fitted sklearn model as the gates get it (digest: the name, for distinct models)."""
    columns = getattr(model, "feature_names_in_", None)
    return LoadedModel(
        ModelIdentity(f"test://{name}"), "", 0, name.encode().hex().ljust(64, "0"), "sklearn",
        model, None if columns is None else tuple(map(str, columns)),
    )  # fmt: skip


def noisy_task(rows: int, features: int = 10, seed: int = 1, flip: float = 0.1) -> pd.DataFrame:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        rows, features, n_informative=5, flip_y=flip, random_state=seed, shuffle=False
    )  # f0-f4 informative, f5-f6 redundant, the rest noise
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame[LABEL] = y
    order = np.random.default_rng(seed).permutation(rows)  # columns kept in order, rows not
    return frame.iloc[order].reset_index(drop=True)


def margin_task(rows: int, seed: int = 3) -> pd.DataFrame:
    """Two classes apart on ``f0`` (a gap of 0.3 of its range), three noise features, a region."""
    rng = np.random.default_rng(seed)
    f0 = rng.uniform(0, 1, rows * 2)
    f0 = f0[np.abs(f0 - 0.5) > 0.15][:rows]
    frame = pd.DataFrame({"f0": f0})
    for j in range(1, 4):
        frame[f"f{j}"] = rng.uniform(0, 1, len(f0))
    frame["region"] = rng.choice(["north", "south"], len(f0))
    frame[LABEL] = (f0 > 0.5).astype(int)
    return frame


def save(model: Any, path: Path) -> str:
    import mlflow

    mlflow.sklearn.save_model(
        model, str(path), serialization_format="skops", pip_requirements=["scikit-learn"],
        skops_trusted_types=["sklearn.tree._tree.Tree"],  # our own trees
    )  # fmt: skip
    return str(path)
