"""PII in validation evidence: GX's observed values, samples, details and errors."""

from __future__ import annotations

import json
from typing import Any

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.validation.gate import ValidationConfig, validate_dataset
from mlsecops_provider.core.validation.poisoning import PoisoningConfig

NAME = "Zebulon Quillfeather"
EMAIL = "zebulon.q@example.org"
SSN = 219099999
CARD = 4111111111111111
NO_SCREENS = ValidationConfig(screens=PoisoningConfig(enabled=False), keep_unexpected_values=True)


def _expect(etype: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": etype, "kwargs": kwargs}


def _table() -> Any:
    import pandas as pd

    rows = 40
    return pd.DataFrame(
        {
            "full_name": [NAME] * 30 + [f"Person {i}" for i in range(10)],
            "contact": [EMAIL] * rows,
            "tax_id": [SSN] * rows,
            "v9": [CARD] * rows,
            "notes": [f"{NAME} wrote from {EMAIL} about it"] * rows,
            "age": list(range(20, 20 + rows)),
        }
    )


def test_pii_in_validation_evidence_is_redacted() -> None:
    """observed_value (most common / distinct values, min/max), partial_unexpected_*,
    details and exception messages of text and PII-like columns hold no raw value, even
    with keep_unexpected_values; a numeric feature keeps its aggregate."""
    suite = {
        "name": "evidence",
        "expectations": [
            _expect(
                "expect_column_most_common_value_to_be_in_set",
                column="full_name",
                value_set=["nobody"],
            ),
            _expect(
                "expect_column_distinct_values_to_be_in_set", column="contact", value_set=["x"]
            ),
            _expect("expect_column_values_to_match_regex", column="notes", regex="^zzz"),
            _expect("expect_column_max_to_be_between", column="tax_id", max_value=5),
            _expect("expect_column_min_to_be_between", column="v9", max_value=5),
            _expect("expect_column_values_to_be_in_set", column="full_name", value_set=["a"]),
            _expect("expect_column_mean_to_be_between", column="full_name", min_value=0),
            _expect("expect_column_max_to_be_between", column="age", max_value=30),
        ],
    }
    result, details = validate_dataset(_table(), suite, config=NO_SCREENS)
    assert result.verdict is Verdict.FAIL
    text = json.dumps([result.to_dict(), details], default=str)
    for value in (NAME, "Quillfeather", EMAIL, str(SSN), str(CARD), "219-09-9999"):
        assert value not in text, value
    assert "Person 3" not in text
    ages = [r for r in details["expectations"] if r["column"] == "age"]
    assert ages[0]["observed"] == "59"
    assert "<redacted" in details["data_docs_html"] or "redacted" in text
