"""PII in numeric columns: card numbers in floats, SSNs and phone numbers in integers."""

from __future__ import annotations

from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig
from tests.security._pii_tables import cards, everything

ROWS = 120


def test_pii_in_numeric_columns_is_detected_and_replaced() -> None:
    """Digits are judged whatever the dtype: Luhn card numbers stored as float, SSNs and
    NANP phone numbers stored as int (an ``ssn`` column also with its leading zero lost)
    are PII columns; a numeric feature column is untouched."""
    import pandas as pd

    card_values = [int(c) for c in cards(ROWS)]
    ssns = [219090000 + i * 7 for i in range(ROWS)]
    frame = pd.DataFrame(
        {
            "v1": [float(c) for c in card_values],
            "v2": ssns,
            "v3": [4158670000 + i for i in range(ROWS)],
            "ssn": [12345678 + i for i in range(ROWS)],  # 012-34-5678: the int lost its 0
            "income": [1000.5 + i for i in range(ROWS)],
        }
    )
    outcome = Deidentifier.prepare(PIIConfig()).run(frame)
    plans = {c["column"]: (c["kind"], c["entity"]) for c in outcome.details["columns"]}
    assert plans["v1"] == ("pii", "CREDIT_CARD")
    assert plans["v2"] == ("pii", "US_SSN")
    assert plans["v3"] == ("pii", "PHONE_NUMBER")
    assert plans["ssn"] == ("pii", "US_SSN")
    assert plans["income"][0] == "clean"
    assert outcome.frame["income"].equals(frame["income"])
    text = everything(outcome)
    assert not [c for c in card_values if str(c) in text]
    assert not [s for s in ssns if str(s) in text]
    assert outcome.result.verdict.value == "pass"


def test_a_few_card_numbers_in_a_numeric_column_fail_the_gate() -> None:
    """Too few to make the column PII: the full scan finds each one and the gate fails."""
    import pandas as pd

    values = list(range(1000))
    planted = [int(c) for c in cards(3, "5")]
    for row, card in zip((5, 500, 999), planted, strict=True):
        values[row] = card
    outcome = Deidentifier.prepare(PIIConfig()).run(pd.DataFrame({"count": values}))
    assert outcome.result.verdict.value == "fail"
    residual = outcome.details["residual"]["columns"]["count"]
    assert residual["example_rows"] == [5, 500, 999]
