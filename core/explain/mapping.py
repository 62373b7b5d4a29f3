"""Map the columns a pipeline's preprocessing outputs back to the input columns they came from.

A scikit-learn ``Pipeline`` whose first step is a ``ColumnTransformer`` (later preprocessing
steps must keep the width) is explained on the encoded matrix; the attributions of the encoded
columns are then summed per source column with a 0/1 matrix (one-hot columns sum back to their
categorical column). ``None`` means the mapping is unknown: explain the raw columns instead.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


def split_pipeline(model: Any) -> tuple[Any, Any] | None:
    """``(preprocessing, final estimator)`` of a fitted sklearn Pipeline, else None."""
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        return None
    return model[:-1], model[-1]


def output_to_input(pre: Any, inputs: list[str]) -> np.ndarray | None:
    """A (encoded columns x input columns) 0/1 matrix, or None when it cannot be derived."""
    import numpy as np
    from sklearn.compose import ColumnTransformer

    first = pre.steps[0][1] if hasattr(pre, "steps") else pre
    if not isinstance(first, ColumnTransformer):
        return None
    try:
        width = len(first.get_feature_names_out())
    except Exception as err:  # a transformer without output names
        log.info("no output names: %s", err)
        return None
    matrix = np.zeros((width, len(inputs)))
    for name, transformer, columns in first.transformers_:
        block = first.output_indices_.get(name)
        if transformer == "drop" or block is None or block.stop == block.start:
            continue
        cols = _column_names(columns, inputs)
        part = _block_map(transformer, cols, block.stop - block.start)
        if cols is None or part is None:
            return None
        for out_row, col in enumerate(part):
            matrix[block.start + out_row, inputs.index(col)] = 1.0
    return matrix if _later_steps_keep_width(pre, width) else None


def _column_names(columns: Any, inputs: list[str]) -> list[str] | None:
    import numpy as np

    if isinstance(columns, str):
        columns = [columns]
    try:
        items = list(columns)
    except TypeError:
        return None
    names = []
    for item in items:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            names.append(inputs[int(item)])
        elif isinstance(item, str) and item in inputs:
            names.append(item)
        else:
            return None
    return names


def _block_map(transformer: Any, cols: list[str] | None, width: int) -> list[str] | None:
    """The input column of each output column of one transformer."""
    if cols is None:
        return None
    if width == len(cols):
        return list(cols)
    if len(cols) == 1:
        return cols * width
    try:
        names = [str(n) for n in transformer.get_feature_names_out(cols)]
    except Exception:
        return None
    out = []
    for name in names:  # e.g. OneHotEncoder: "<column>_<category>"; the longest prefix wins
        owners = [c for c in cols if name == c or name.startswith(f"{c}_")]
        if not owners:
            return None
        out.append(max(owners, key=len))
    return out if len(out) == width else None


def _later_steps_keep_width(pre: Any, width: int) -> bool:
    steps = pre.steps[1:] if hasattr(pre, "steps") else []
    for _, step in steps:
        n_in = getattr(step, "n_features_in_", None)
        try:
            n_out = len(step.get_feature_names_out())
        except Exception:
            return False
        if n_in != width or n_out != width:
            return False
    return True
