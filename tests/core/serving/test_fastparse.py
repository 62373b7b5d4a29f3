"""The direct request path builds exactly the frame MLflow's parsing and schema enforcement
build (values, dtypes, column order, index) on plain requests, and hands every other request
to MLflow's path; the answers stay the champion's byte for byte."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from mlsecops_provider.core.serving.fastparse import FastFrames
from mlsecops_provider.core.serving.protocol import enforce_schema, parse_body

NAMES = ["n", "x", "s", "b"]


def mixed_schema() -> Any:
    from mlflow.types import ColSpec, Schema

    return Schema(
        [
            ColSpec("long", "n"),
            ColSpec("double", "x"),
            ColSpec("string", "s"),
            ColSpec("boolean", "b"),
        ]
    )


def slow_frame(schema: Any, key: str, payload: Any, flavor: str | None = None) -> Any:
    body = json.dumps({key: payload}).encode()
    names = tuple(schema.input_names())
    return enforce_schema(parse_body(body, schema, names), schema, flavor)


def random_rows(count: int, seed: int) -> list[list[Any]]:
    rng = random.Random(seed)
    return [
        [
            rng.randint(-(2**40), 2**40),
            rng.choice([rng.uniform(-1e6, 1e6), rng.randint(-5, 5), 0.0, -0.0, 1e-300]),
            rng.choice(["", "a", "Ünïcode", "x" * 50, "1", "null"]),
            rng.choice([True, False]),
        ]
        for _ in range(count)
    ]


@pytest.mark.parametrize("seed", range(12))
def test_plain_requests_give_mlflows_frame_exactly(seed: int) -> None:
    import pandas as pd

    schema = mixed_schema()
    fast = FastFrames(schema)
    assert fast.enabled
    rows = random_rows(1 + seed % 5, seed)
    names = list(schema.input_names())
    index = [random.Random(seed).randint(-1000, 1000) for _ in rows]
    for key, payload in (
        ("dataframe_split", {"columns": names, "data": rows}),
        ("dataframe_split", {"columns": names, "index": index, "data": rows}),
        ("dataframe_records", [dict(zip(names, r, strict=True)) for r in rows]),
    ):
        built = fast.frame(key, payload)
        assert built is not None
        pd.testing.assert_frame_equal(built, slow_frame(schema, key, payload), check_exact=True)


@pytest.mark.parametrize(
    "key, payload",
    [
        ("dataframe_split", {"columns": ["x", "n", "s", "b"], "data": [[1.0, 1, "a", True]]}),
        ("dataframe_split", {"columns": ["n", "x", "s", "b"], "data": [[1, None, "a", True]]}),
        ("dataframe_split", {"columns": ["n", "x", "s", "b"], "data": [[True, 1.0, "a", True]]}),
        ("dataframe_split", {"columns": ["n", "x", "s", "b"], "data": [[1.5, 1.0, "a", True]]}),
        ("dataframe_split", {"columns": ["n", "x", "s", "b"], "data": [["1", 1.0, "a", True]]}),
        ("dataframe_split", {"columns": ["n", "x", "s", "b"], "data": [[1, "1", "a", True]]}),
        ("dataframe_split", {"columns": ["n", "x", "s", "b"], "data": [[1, 1.0, 3, True]]}),
        ("dataframe_split", {"columns": ["n", "x", "s", "b"], "data": [[1, 1.0, "a", 1]]}),
        ("dataframe_split", {"columns": ["n", "x", "s", "b"], "data": [[2**70, 1.0, "a", True]]}),
        ("dataframe_split", {"columns": ["n", "x", "s", "b"], "data": [[1, float("nan"), "a", 1]]}),
        ("dataframe_split", {"columns": ["n", "x", "s", "b"], "data": [[1, 1.0, "a"]]}),
        ("dataframe_split", {"columns": ["n", "x", "s", "b"], "data": []}),
        ("dataframe_split", {"columns": NAMES, "index": ["r"], "data": [[1, 1.0, "a", True]]}),
        ("dataframe_split", {"columns": NAMES, "index": [1, 2], "data": [[1, 1.0, "a", True]]}),
        ("dataframe_split", {"columns": NAMES, "index": [True], "data": [[1, 1.0, "a", True]]}),
        ("dataframe_split", {"columns": NAMES, "data": [[1, 1.0, "a", True]], "extra": 1}),
        ("dataframe_records", [{"n": 1, "x": 1.0, "s": "a", "b": True, "extra": 1}]),
        ("dataframe_records", [{"x": 1.0, "n": 1, "s": "a", "b": True}]),
        ("dataframe_records", [{"n": 1, "x": 1.0, "s": "a"}]),
        ("instances", [[1, 1.0, "a", True]]),
        ("inputs", {"n": [1], "x": [1.0], "s": ["a"], "b": [True]}),
    ],
)  # fmt: skip
def test_anything_else_goes_through_mlflows_path(key: str, payload: Any) -> None:
    assert FastFrames(mixed_schema()).frame(key, payload) is None


def test_other_column_types_and_no_schema_keep_mlflows_path() -> None:
    from mlflow.types import ColSpec, Schema

    assert not FastFrames(Schema([ColSpec("long", "n"), ColSpec("float", "f")])).enabled
    assert not FastFrames(
        Schema([ColSpec("long", "n"), ColSpec("double", "x", required=False)])
    ).enabled
    assert not FastFrames(None).enabled


def test_the_served_models_requests_take_the_direct_path(models: dict[str, Any]) -> None:
    import pandas as pd

    from tests.core.serving.conftest import request_rows

    champion = models["champion"]
    flavor = champion.pyfunc.loader_module
    fast = FastFrames(champion.input_schema, flavor)
    assert fast.enabled
    for seed in range(5):
        rows = request_rows(3, seed=seed)
        built = fast.frame("dataframe_records", rows)
        expected = slow_frame(champion.input_schema, "dataframe_records", rows, flavor)
        pd.testing.assert_frame_equal(built, expected, check_exact=True)
        assert list(champion.predict_enforced(built)) == list(champion.predict(pd.DataFrame(rows)))
