"""A direct path from the usual scoring request to the frame MLflow's schema enforcement returns.

MLflow's ``infer_and_parse_data`` then ``_enforce_schema`` build a request's DataFrame in
about 1.5 ms for one row, most of it pandas work on a frame of a few values. For the usual
request — ``dataframe_split`` (with an integer ``index`` or none) or ``dataframe_records``
whose columns are
exactly the schema's, in its order, and whose every value is already of its column's JSON
type (an integer for ``long``, a number for ``double``, text for ``string``, true/false for
``boolean``; no nulls, no non-finite numbers) — :class:`FastFrames` builds that frame
directly. Anything else (another format, a missing or extra column, a null, a number as
text, any other column type) returns None and goes through MLflow's own code, as before.

At start the two paths are compared on a sample built from the schema; if their frames are
not identical (values, dtypes, column order, index), the direct path stays off, so an
upgraded MLflow or pandas can only make the server slower, never answer differently. The
tests compare both paths on many requests.
"""

from __future__ import annotations

import logging
import math
from typing import Any

log = logging.getLogger(__name__)
LONG, DOUBLE, STRING, BOOLEAN = "long", "double", "string", "boolean"


def _accepts(kind: str, value: Any) -> bool:
    kind_of = type(value)
    if kind == LONG:
        return kind_of is int
    if kind == DOUBLE:
        return (kind_of is float and math.isfinite(value)) or kind_of is int
    if kind == STRING:
        return kind_of is str
    return kind_of is bool  # BOOLEAN


class FastFrames:
    """Builds the enforced frame of a plain request, or None for MLflow's path."""

    def __init__(self, input_schema: Any, flavor: str | None = None) -> None:
        self.plan: tuple[tuple[str, str], ...] | None = _plan(input_schema)
        self.names = tuple(name for name, _ in self.plan or ())
        if self.plan is not None and not self._agrees(input_schema, flavor):
            self.plan = None

    @property
    def enabled(self) -> bool:
        return self.plan is not None

    def frame(self, key: str, payload: Any) -> Any:
        """The enforced DataFrame for ``{key: payload}``, or None when it is not plain."""
        rows, index = self._rows_and_index(key, payload)
        return None if not rows else self._build(rows, index)

    def joined(self, payloads: list[tuple[str, Any]]) -> tuple[Any, list[int]] | None:
        """One enforced frame of the rows of several plain requests (a new 0..n-1 index, as
        ``pd.concat(..., ignore_index=True)`` of their frames) and each request's row count;
        None when one of them is not plain."""
        every: list[Any] = []
        sizes: list[int] = []
        for key, payload in payloads:
            rows, _ = self._rows_and_index(key, payload)
            if not rows:
                return None
            every.extend(rows)
            sizes.append(len(rows))
        frame = self._build(every) if every else None
        return None if frame is None else (frame, sizes)

    def _rows_and_index(self, key: str, payload: Any) -> tuple[list[Any] | None, Any]:
        if self.plan is None:
            return None, None
        if key == "dataframe_split":
            rows = self._split_rows(payload)
            index = payload.get("index") if rows else None
            if index is not None and not _plain_index(index, len(rows or ())):
                return None, None
            return rows, index
        if key == "dataframe_records":
            return self._record_rows(payload), None
        return None, None

    def _split_rows(self, payload: Any) -> list[Any] | None:
        if not isinstance(payload, dict) or not set(payload) <= {"columns", "data", "index"}:
            return None
        columns, data = payload.get("columns"), payload.get("data")
        if not isinstance(columns, list) or tuple(columns) != self.names:
            return None
        if not isinstance(data, list):
            return None
        width = len(self.names)
        if not all(isinstance(row, list) and len(row) == width for row in data):
            return None
        return data

    def _record_rows(self, payload: Any) -> list[Any] | None:
        if not isinstance(payload, list):
            return None
        names = list(self.names)
        if not all(isinstance(r, dict) and list(r) == names for r in payload):
            return None
        return [list(r.values()) for r in payload]

    def _build(self, rows: list[Any], index: list[int] | None = None) -> Any:
        import numpy as np
        import pandas as pd

        assert self.plan is not None
        columns: dict[str, Any] = {}
        for position, (name, kind) in enumerate(self.plan):
            values = [row[position] for row in rows]
            if not all(_accepts(kind, v) for v in values):
                return None
            try:
                if kind == LONG:
                    columns[name] = np.array(values, dtype=np.int64)
                elif kind == DOUBLE:
                    columns[name] = np.array(values, dtype=np.float64)
                elif kind == BOOLEAN:
                    columns[name] = np.array(values, dtype=bool)
                else:
                    columns[name] = values  # pandas infers its text dtype, as MLflow's path
            except OverflowError:  # an integer beyond int64: MLflow's path decides
                return None
        try:
            if index is None:
                return pd.DataFrame(columns)
            return pd.DataFrame(columns, index=pd.Index(np.array(index, dtype=np.int64)))
        except Exception:  # e.g. a lone surrogate pyarrow cannot encode: MLflow's path decides
            return None

    def _agrees(self, input_schema: Any, flavor: str | None) -> bool:
        """Both paths give the identical frame on a sample of the schema's types."""
        import json

        import pandas as pd

        from mlsecops_provider.core.serving.protocol import enforce_schema, parse_body

        samples = {LONG: (1, -7), DOUBLE: (1.5, 2), STRING: ("a", "b"), BOOLEAN: (True, False)}
        assert self.plan is not None
        data = [[samples[kind][i] for _, kind in self.plan] for i in range(2)]
        requests = [
            ("dataframe_split", {"columns": list(self.names), "data": data}),
            ("dataframe_split", {"columns": list(self.names), "index": [5, 3], "data": data}),
            ("dataframe_records", [dict(zip(self.names, row, strict=True)) for row in data]),
        ]
        try:
            for key, payload in requests:
                body = json.dumps({key: payload}).encode()
                parsed = parse_body(body, input_schema, self.names)
                slow = enforce_schema(parsed, input_schema, flavor)
                pd.testing.assert_frame_equal(self.frame(key, payload), slow, check_exact=True)
        except Exception as err:  # any difference: MLflow's path for every request
            log.info("direct request parsing off (differs from MLflow's: %s)", err)
            return False
        return True


def _plain_index(index: Any, rows: int) -> bool:
    return (
        isinstance(index, list)
        and len(index) == rows
        and all(type(i) is int and -(2**63) <= i < 2**63 for i in index)
    )


def _plan(input_schema: Any) -> tuple[tuple[str, str], ...] | None:
    if input_schema is None or input_schema.is_tensor_spec() or not input_schema.has_input_names():
        return None
    plan = []
    for spec in input_schema.inputs:
        kind = getattr(getattr(spec, "type", None), "name", None)
        if kind not in (LONG, DOUBLE, STRING, BOOLEAN) or not getattr(spec, "required", True):
            return None
        plan.append((str(spec.name), kind))
    return tuple(plan) or None
