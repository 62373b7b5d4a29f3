"""The fast pattern pass: formats, disguises and checksums, no NLP."""

from __future__ import annotations

import pytest

from mlsecops_provider.core.pii.patterns import digit_entity, merge_spans, scan_text


def _found(text: str) -> list[tuple[str, str]]:
    return [(s.entity_type, text[s.start : s.end]) for s in merge_spans(scan_text(text))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "write to john.doe[at]example[dot]com",
            [("EMAIL_ADDRESS", "john.doe[at]example[dot]com")],
        ),
        ("mail jane at example dot org", [("EMAIL_ADDRESS", "jane at example dot org")]),
        ("we met at home. Then left", []),
        ("call 415 dash 867 dash 5309", [("PHONE_NUMBER", "415 dash 867 dash 5309")]),
        ("or +49 30 1234567.", [("PHONE_NUMBER", "+49 30 1234567")]),
        ("tel. 01 42 68 53 00 (Paris)", [("PHONE_NUMBER", "01 42 68 53 00")]),
        (
            "five five five one two three four five six seven",
            [("PHONE_NUMBER", "five five five one two three four five six seven")],
        ),
        ("SSN 219-09-9999 or ssn: 219099999", [("US_SSN", "219-09-9999"), ("US_SSN", "219099999")]),
        ("card 4111 1111 1111 1111", [("CREDIT_CARD", "4111 1111 1111 1111")]),
        ("card 4111 1111 1111 1112", []),  # Luhn fails
        ("IBAN GB82WEST12345698765432", [("IBAN_CODE", "GB82WEST12345698765432")]),
        ("from 203.0.113.77", [("IP_ADDRESS", "203.0.113.77")]),
        ("lives at 42 Oak Street", [("LOCATION", "42 Oak Street")]),
        ("on 2024-01-15 we paid 12,000.50 for version 1.2.3", []),
        ("2024-01-15 10:22:33", []),  # a timestamp is no phone number
        ("12/03/2024 14:05", []),
        ("1234567890.12", []),  # nor is an amount
        ("Amount 1,234,567.89", []),
    ],
)
def test_pattern_pass(text: str, expected: list[tuple[str, str]]) -> None:
    assert _found(text) == expected


def test_digit_entity_of_numeric_cells() -> None:
    assert digit_entity("4111111111111111") == "CREDIT_CARD"
    assert digit_entity("219099999") == "US_SSN"
    assert digit_entity("12345678", ssn_hint=True) == "US_SSN"  # 012-34-5678 as an int
    assert digit_entity("4158675309") == "PHONE_NUMBER"
    assert digit_entity("1234567890") is None  # area code 123 is no NANP area code
    assert digit_entity("12345") is None
