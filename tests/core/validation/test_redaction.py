"""Redaction of GX results: no raw value of a text or PII-like column survives."""

from __future__ import annotations

import json
from typing import Any

from mlsecops_provider.core.validation.redaction import redact_result, sensitive_columns


def _item(column: str, result: dict[str, Any], error: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "success": False,
        "expectation_config": {"type": "expect_x", "kwargs": {"column": column}},
        "result": result,
    }
    if error:
        item["exception_info"] = {
            "raised_exception": True,
            "exception_message": error,
            "exception_traceback": error,
        }
    return item


def test_sensitive_columns_are_text_pii_names_and_pii_like_digits() -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "note": ["a", "b"],
            "phone_home": [1, 2],
            "v": [4111111111111111, 5500005555555559],
            "age": [30, 40],
            "score": [0.5, 0.7],
        }
    )
    assert sensitive_columns(frame) == {"note", "phone_home", "v"}


def test_values_of_sensitive_columns_are_replaced_and_counts_stay() -> None:
    secret = "Zebulon Quillfeather"
    gx = {
        "results": [
            _item(
                "name",
                {
                    "observed_value": [secret, "x"],
                    "details": {"value_counts": [{"value": secret, "count": 3}]},
                    "partial_unexpected_list": [secret],
                    "unexpected_count": 3,
                    "element_count": 10,
                },
                error=f"could not convert {secret!r} to float",
            ),
            _item("age", {"observed_value": 59, "partial_unexpected_list": [150]}),
            {"expectation_config": {"kwargs": {}}, "result": {"observed_value": ["a", "b"]}},
        ]
    }
    redact_result(gx, {"name"}, keep_values=True)
    assert secret not in json.dumps(gx)
    name, age, table = (item["result"] for item in gx["results"])
    assert name["observed_value"] == "<redacted: list of 2>"
    assert name["unexpected_count"] == 3 and name["element_count"] == 10
    assert "partial_unexpected_list" not in name
    assert age == {"observed_value": 59, "partial_unexpected_list": [150]}  # kept: asked for
    assert table == {"observed_value": ["a", "b"]}  # column names, not row values
    redact_result(gx, {"name"}, keep_values=False)
    assert "partial_unexpected_list" not in gx["results"][1]["result"]


def test_without_a_column_list_every_column_is_sensitive() -> None:
    gx = {"results": [_item("score", {"observed_value": 0.25})]}
    redact_result(gx)
    assert gx["results"][0]["result"]["observed_value"] == "<redacted>"
