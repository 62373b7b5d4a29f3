"""Shared set-up of the shadow raw-body attack tests: a real MLflow (skops) regression model
whose every row gets its own prediction, so a row credited to another request shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlsecops_provider.core.serving.loading import ServedModel
from mlsecops_provider.core.serving.mirror import jsonable_values
from mlsecops_provider.core.serving.protocol import enforce_schema, parse_request
from tests.core.serving.conftest import COLUMNS, save, served, training_frame


def regression_model(folder: Path) -> ServedModel:
    """age, income, segment -> a continuous score (distinct per row)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train = training_frame(200, seed=7)
    target = train["age"] * 3.0 + train["income"] / 1000.0 + (train["segment"] == "student")
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["segment"]),
        ]
    )
    model = Pipeline([("prep", prep), ("reg", LinearRegression())]).fit(
        train[list(COLUMNS)], target
    )
    return served(save(model, folder, train[list(COLUMNS)].head(3)), "shadow", "3")


def child_predict(model: ServedModel) -> Any:
    """What the shadow's process runs: enforce (unless already enforced), predict, JSON."""
    flavor = model.pyfunc.loader_module

    def predict(frame: Any, enforced: bool = False) -> tuple[list[str], float]:
        frame = frame if enforced else enforce_schema(frame, model.input_schema, flavor)
        return jsonable_values(model.predict_enforced(frame)), 0.0

    return predict


def server_view(model: ServedModel, body: bytes) -> list[str] | None:
    """The predictions for the frame the server parses from ``body`` (None: refused)."""
    try:
        frame, enforced = parse_request(body, model.input_schema, model.columns, None)
        return child_predict(model)(frame, enforced)[0]
    except Exception:
        return None


def request_rows(count: int, seed: int) -> list[dict[str, Any]]:
    frame = training_frame(count, seed)[list(COLUMNS)]
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def body(fmt: str, rows: list[dict[str, Any]]) -> bytes:
    """One request in ``fmt`` (plain for the direct parser or not)."""
    names = list(COLUMNS)
    data = [[r[n] for n in names] for r in rows]
    payloads: dict[str, Any] = {
        "records": {"dataframe_records": rows},
        "split": {"dataframe_split": {"columns": names, "data": data}},
        "split_index": {
            "dataframe_split": {
                "columns": names,
                "index": list(range(len(rows)))[::-1],
                "data": data,
            }
        },
        "split_text_index": {
            "dataframe_split": {
                "columns": names,
                "index": [f"r{i}" for i in range(len(rows))],
                "data": data,
            }
        },
        "split_reordered": {
            "dataframe_split": {
                "columns": names[::-1],
                "data": [row[::-1] for row in data],
            }
        },
        "instances": {"instances": rows},
        "inputs": {"inputs": {n: [r[n] for r in rows] for n in names}},
        "records_float_age": {"dataframe_records": [{**r, "age": float(r["age"])} for r in rows]},
    }
    return json.dumps(payloads[fmt]).encode()
