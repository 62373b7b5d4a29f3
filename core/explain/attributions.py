"""SHAP attributions per input column, for any model the gates load.

* **tree**: ``shap.TreeExplainer`` (exact, path-dependent Tree SHAP) on the final estimator of
  a pipeline (encoded columns, summed back to the input columns) or on a bare tree model;
* **linear**: ``shap.LinearExplainer`` with an independent masker on a background sample;
* **permutation**: model-agnostic ``shap.PermutationExplainer`` on the raw input columns
  (non-numeric columns are integer-coded for the masker and decoded before each call),
  explaining the positive-class probability (or the prediction when there is none).

``auto`` tries tree, then linear, then permutation. An explainer that is asked for and
cannot explain the model is bad input (:class:`DataError`), never a silent fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.explain.mapping import output_to_input, split_pipeline

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)
ORDER = ("tree", "linear", "permutation")


@dataclass(frozen=True)
class Explainer:
    """A ready explainer: ``attribute(frame)`` gives (rows x input columns) attributions."""

    method: str
    output: str
    inputs: tuple[str, ...]
    attribute: Callable[[pd.DataFrame], np.ndarray]


def build_explainer(
    model: Any, background: pd.DataFrame, method: str, positive: Any, seed: int = 0
) -> Explainer:
    """The explainer for ``model`` (``method``: auto, tree, linear or permutation)."""
    tried = ORDER if method == "auto" else (method,)
    reasons = []
    for name in tried:
        try:
            explainer = BUILDERS[name](model, background, positive, seed)
        except Exception as err:  # the library refuses this model: try the next, or fail
            reasons.append(f"{name}: {type(err).__name__}: {str(err)[:160]}")
            continue
        if explainer is not None:
            return explainer
        reasons.append(f"{name}: not applicable to {type(model).__name__}")
    raise DataError(f"model {type(model).__name__} cannot be explained ({'; '.join(reasons)})")


def _class_index(model: Any, positive: Any) -> int | None:
    classes = getattr(model, "classes_", None)
    if classes is None or positive is None:
        return None
    listed = list(classes)
    return listed.index(positive) if positive in listed else len(listed) - 1


def _encoded(model: Any, inputs: list[str]) -> tuple[Any, Any, np.ndarray] | None:
    """(preprocessing or None, estimator, encoded->input matrix) for an explainable layout."""
    import numpy as np

    parts = split_pipeline(model)
    if parts is None:
        return None, model, np.eye(len(inputs))
    pre, est = parts
    matrix = output_to_input(pre, inputs)
    return None if matrix is None else (pre, est, matrix)


def _dense(pre: Any, frame: pd.DataFrame) -> np.ndarray:
    import numpy as np

    out = frame if pre is None else pre.transform(frame)
    out = out.toarray() if hasattr(out, "toarray") else out
    return np.asarray(out, dtype=float)


def _select(values: Any, index: int | None) -> np.ndarray:
    import numpy as np

    if isinstance(values, list):  # older shap: one array per class
        values = values[index if index is not None else -1]
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 3:
        arr = arr[:, :, index if index is not None else -1]
    return arr


def _tree(model: Any, background: pd.DataFrame, positive: Any, seed: int) -> Explainer | None:
    import shap

    inputs = list(background.columns)
    layout = _encoded(model, inputs)
    if layout is None:
        return None
    pre, est, matrix = layout
    explainer = shap.TreeExplainer(est, feature_perturbation="tree_path_dependent")
    index = _class_index(est, positive)
    output = (
        "probability"
        if type(est).__name__.startswith(("RandomForest", "ExtraTrees", "DecisionTree"))
        else "raw"
    )

    def attribute(frame: pd.DataFrame) -> np.ndarray:
        values = explainer.shap_values(_dense(pre, frame), check_additivity=False)
        return _select(values, index) @ matrix

    attribute(background.iloc[:2])  # refuse now, not mid-run, if the model does not fit
    return Explainer("tree", output, tuple(inputs), attribute)


def _linear(model: Any, background: pd.DataFrame, positive: Any, seed: int) -> Explainer | None:
    import shap

    inputs = list(background.columns)
    layout = _encoded(model, inputs)
    if layout is None:
        return None
    pre, est, matrix = layout
    if not (hasattr(est, "coef_") and hasattr(est, "intercept_")):
        return None
    masker = shap.maskers.Independent(_dense(pre, background), max_samples=len(background))
    explainer = shap.LinearExplainer(est, masker)
    index = _class_index(est, positive)
    output = "log-odds" if hasattr(est, "predict_proba") else "raw"

    def attribute(frame: pd.DataFrame) -> np.ndarray:
        return _select(explainer.shap_values(_dense(pre, frame)), index) @ matrix

    attribute(background.iloc[:2])
    return Explainer("linear", output, tuple(inputs), attribute)


def _permutation(
    model: Any, background: pd.DataFrame, positive: Any, seed: int
) -> Explainer | None:
    import numpy as np
    import shap

    inputs = list(background.columns)
    codes = _Codes(background)
    index = _class_index(model, positive)
    proba = hasattr(model, "predict_proba") and index is not None

    def score(matrix: np.ndarray) -> np.ndarray:
        frame = codes.decode(matrix)
        if proba:
            return np.asarray(model.predict_proba(frame))[:, index].astype(float)
        return np.asarray(model.predict(frame)).astype(float).ravel()

    masker = shap.maskers.Independent(codes.encode(background), max_samples=len(background))
    explainer = shap.PermutationExplainer(score, masker, seed=seed)
    evals = 4 * len(inputs) + 1

    def attribute(frame: pd.DataFrame) -> np.ndarray:
        result = explainer(codes.encode(frame), max_evals=evals, silent=True)
        return np.asarray(result.values, dtype=float)

    attribute(background.iloc[:1])
    return Explainer("permutation", "probability" if proba else "prediction",
                     tuple(inputs), attribute)  # fmt: skip


class _Codes:
    """Numeric matrix <-> the frame the model expects (non-numeric columns as category codes)."""

    def __init__(self, reference: pd.DataFrame) -> None:
        self.columns = list(reference.columns)
        self.dtypes = reference.dtypes
        self.categories: dict[str, list[Any]] = {}
        for col in self.columns:
            if reference[col].dtype.kind not in "biuf":
                self.categories[col] = sorted(reference[col].dropna().unique().tolist(), key=str)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        import numpy as np

        out = np.empty((len(frame), len(self.columns)))
        for j, col in enumerate(self.columns):
            if col in self.categories:
                lookup = {v: i for i, v in enumerate(self.categories[col])}
                out[:, j] = [lookup.get(v, -1) for v in frame[col].tolist()]
            else:
                out[:, j] = frame[col].to_numpy(dtype=float, na_value=np.nan)
        return out

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        data: dict[str, Any] = {}
        for j, col in enumerate(self.columns):
            if col in self.categories:
                cats = np.asarray(self.categories[col] + [None], dtype=object)
                data[col] = cats[matrix[:, j].astype(int)]
            else:
                data[col] = matrix[:, j].astype(self.dtypes[col], copy=False)
        return pd.DataFrame(data, columns=self.columns)


BUILDERS: dict[str, Callable[[Any, Any, Any, int], Explainer | None]] = {
    "tree": _tree,
    "linear": _linear,
    "permutation": _permutation,
}
