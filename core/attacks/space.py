"""The space the attacks work in, and the models as ART sees them.

ART's attacks work on numeric arrays; our models take a table (an sklearn Pipeline with its
own scaling and one-hot encoding). :class:`AttackSpace` maps a table to an array and back
without changing what the model sees: every numeric feature with a spread (and no missing
value) is min-max scaled by its range in the data (``0`` = the smallest value, ``1`` = the
largest), so one epsilon means the same share of every feature's range; every other input
column (categoricals, constant or incomplete numerics) is carried as an integer code that the
attacks hold fixed (ART's ``mask`` where the attack has one, else reset afterwards). Decoding
un-scales the numbers, rounds integer features back to integers and maps the codes to their
values, so the model always gets a table like its training data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlsecops_provider.core.shadow.models import LoadedModel

log = logging.getLogger(__name__)
MAX_CLASSES = 50
UNITS = "L-inf, in min-max-scaled feature units (each feature divided by its range in the data)"


@dataclass(frozen=True)
class AttackSpace:
    """Columns of the model input and how each is carried in the attack array."""

    columns: tuple[str, ...]  # every input column, in table order
    numeric: tuple[str, ...]  # perturbable, min-max scaled
    fixed: tuple[str, ...]  # held fixed, as integer codes
    low: np.ndarray
    span: np.ndarray
    integral: tuple[bool, ...]
    categories: tuple[tuple[Any, ...], ...]  # values of each fixed column (code = index)
    dtypes: tuple[Any, ...]  # of every column, to rebuild the table

    @classmethod
    def fit(cls, features: pd.DataFrame) -> AttackSpace:
        import numpy as np
        import pandas as pd

        if features.empty or not len(features.columns):
            raise DataError("the attacks need at least one row and one feature column")
        numeric, fixed, low, span, integral, categories = [], [], [], [], [], []
        for column in features.columns:
            series = features[column]
            kind = series.dtype.kind
            if kind in "iuf" and not series.isna().any() and series.nunique() > 1:
                values = series.to_numpy(dtype=np.float64)
                numeric.append(str(column))
                low.append(float(values.min()))
                span.append(float(values.max() - values.min()))
                integral.append(kind in "iu")
            else:
                fixed.append(str(column))
                uniques = pd.unique(series)
                categories.append(tuple(uniques.tolist()))
        return cls(
            tuple(map(str, features.columns)),
            tuple(numeric),
            tuple(fixed),
            np.asarray(low),
            np.asarray(span),
            tuple(integral),
            tuple(categories),
            tuple(features[c].dtype for c in features.columns),
        )

    @property
    def width(self) -> int:
        return len(self.numeric) + len(self.fixed)

    def mask(self) -> np.ndarray:
        """1 for the perturbable (scaled numeric) positions, 0 for the fixed codes."""
        import numpy as np

        return np.concatenate([np.ones(len(self.numeric)), np.zeros(len(self.fixed))])

    def clip_values(self) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        high = [max(len(c) - 1, 0) for c in self.categories]
        low = np.zeros(self.width, dtype=np.float32)
        return low, np.concatenate([np.ones(len(self.numeric)), high]).astype(np.float32)

    def encode(self, features: pd.DataFrame) -> np.ndarray:
        """The table as an attack array: ``[scaled numerics | fixed codes]`` (float32)."""
        import numpy as np

        missing = [c for c in self.columns if c not in features.columns]
        if missing:
            raise DataError(f"dataset lacks column(s) {missing} that the model needs")
        if self.numeric:
            raw = features[list(self.numeric)].to_numpy(dtype=np.float64)
            scaled = (raw - self.low) / self.span
        else:
            scaled = np.zeros((len(features), 0))
        codes = np.zeros((len(features), len(self.fixed)))
        for j, (column, values) in enumerate(zip(self.fixed, self.categories, strict=True)):
            lookup = {_key(v): i for i, v in enumerate(values)}
            codes[:, j] = [lookup.get(_key(v), 0) for v in features[column].tolist()]
        return np.hstack([scaled, codes]).astype(np.float32)

    def decode(self, x: np.ndarray) -> pd.DataFrame:
        """An attack array back to a table the model accepts."""
        import numpy as np
        import pandas as pd

        x = np.asarray(x, dtype=np.float64).reshape(len(x), self.width)
        data: dict[str, Any] = {}
        k = len(self.numeric)
        for j, column in enumerate(self.numeric):
            values = x[:, j] * self.span[j] + self.low[j]
            data[column] = np.rint(values) if self.integral[j] else values
        for j, (column, values) in enumerate(zip(self.fixed, self.categories, strict=True)):
            index = np.clip(np.rint(x[:, k + j]), 0, max(len(values) - 1, 0)).astype(int)
            data[column] = [values[i] for i in index] if values else [None] * len(x)
        frame = pd.DataFrame(data)[list(self.columns)]
        for column, dtype in zip(self.columns, self.dtypes, strict=True):
            if column in self.numeric:
                frame[column] = frame[column].astype(dtype)
        return frame

    def project(self, x: np.ndarray, x_adv: np.ndarray, eps: float | None) -> np.ndarray:
        """Reset the fixed codes and clip the numerics to the eps box and to [0, 1]."""
        import numpy as np

        out = np.array(x_adv, dtype=np.float32, copy=True)
        k = len(self.numeric)
        out[:, k:] = x[:, k:]
        if eps is not None:
            out[:, :k] = np.clip(out[:, :k], x[:, :k] - eps, x[:, :k] + eps)
        out[:, :k] = np.clip(out[:, :k], 0.0, 1.0)
        return out


@contextmanager
def quiet_art() -> Iterator[None]:
    """Hide ART's import-time warning about PyTorch (no PyTorch estimator is used here)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PyTorch not found", category=UserWarning)
        yield


def _key(value: Any) -> Any:
    return "<nan>" if value != value else value  # NaN never equals itself


class ScoredModel:
    """One model's predictions on attack arrays, in a fixed class order; counts the queries."""

    def __init__(self, model: LoadedModel, space: AttackSpace, classes: list[Any]) -> None:
        self.model, self.space, self.classes = model, space, classes
        self.queries = 0
        self._order: list[int | None] | None = None
        own = model.classes
        if model.has_scores and own is not None:
            unknown = [c for c in own if c not in classes]
            if unknown:
                raise DataError(f"{model.identity.uri} predicts classes {unknown} not in the data")
            self._order = [own.index(c) if c in own else None for c in classes]

    @property
    def has_scores(self) -> bool:
        return self._order is not None

    def table_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Class probabilities (one-hot of the label when the model gives no scores)."""
        import numpy as np

        columns = list(self.model.input_columns or self.space.columns)
        self.queries += len(features)
        if self.has_scores:  # one call: the label is the most probable class
            try:
                scores, labels = self.model.model.predict_proba(features[columns]), None
            except Exception as err:  # a model that cannot score the data is unusable input
                raise DataError(
                    f"{self.model.identity.uri} cannot predict ({type(err).__name__}: {err})"
                ) from err
        else:
            labels, scores = self.model.raw_predict(features[columns], with_scores=False)
        out = np.zeros((len(features), len(self.classes)), dtype=np.float32)
        if scores is not None and self._order is not None:
            scores = np.asarray(scores)
            for j, own in enumerate(self._order):
                if own is not None:
                    out[:, j] = scores[:, own]
            return out
        index = {c: i for i, c in enumerate(self.classes)}
        for row, value in enumerate(np.asarray(labels).ravel().tolist()):
            if value in index:
                out[row, index[value]] = 1.0
        return out

    def proba(self, x: np.ndarray) -> np.ndarray:
        return self.table_proba(self.space.decode(x))

    def labels(self, x: np.ndarray) -> np.ndarray:
        return self.proba(x).argmax(axis=1)

    def art_classifier(self) -> Any:
        """The model as an ART black-box classifier over the attack space."""
        with quiet_art():
            from art.estimators.classification import BlackBoxClassifier

        return BlackBoxClassifier(
            self.proba,
            (self.space.width,),
            len(self.classes),
            clip_values=self.space.clip_values(),
        )


def class_index(y: Any, classes: list[Any]) -> np.ndarray:
    """The label of every row as its index in ``classes`` (every label must be a class)."""
    import numpy as np

    lookup = {c: i for i, c in enumerate(classes)}
    values = np.asarray(y).tolist()
    unknown = sorted({str(v) for v in values if v not in lookup})
    if unknown:
        raise DataError(f"label value(s) {unknown[:5]} are not classes of the model {classes}")
    return np.asarray([lookup[v] for v in values], dtype=np.int64)


def model_classes(models: list[LoadedModel], y: Any) -> list[Any]:
    """The classes in a fixed order: the candidate's, else the sorted label values."""
    import numpy as np

    own = models[0].classes
    labels = np.asarray(y)
    if own is None and labels.dtype.kind == "f" and len(np.unique(labels)) > MAX_CLASSES:
        raise DataError(
            f"{models[0].identity.uri} looks like a regressor (no classes, a continuous "
            "label): these attacks need a classifier"
        )
    values = sorted(np.unique(np.asarray(y)).tolist(), key=str)
    if own is not None:
        return list(own) + [v for v in values if v not in own]
    return values


def model_features(models: list[LoadedModel], frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """The union of the models' input columns (all but the label when a model does not say)."""
    columns: list[str] = []
    for model in models:
        own = model.input_columns or tuple(c for c in frame.columns if c != label)
        columns.extend(c for c in own if c not in columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"dataset lacks column(s) {missing} that the model needs")
    return frame[columns]


def row_digests(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """A 64-bit digest of every row over ``columns`` (pandas' stable row hash)."""
    import pandas as pd

    return pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
