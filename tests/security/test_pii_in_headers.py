"""PII in column names: headers are scanned and renamed in the output and every report."""

from __future__ import annotations

from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig
from tests.security._pii_tables import everything

HEADERS = ("zebulon.quillfeather@example.org", "Zebulon Quillfeather", "call 415-867-5309")


def test_pii_in_headers_is_renamed_everywhere() -> None:
    """Names, e-mail addresses and phone numbers in headers never reach the output or the
    report; ordinary headers stay; the gate warns and says which positions were renamed."""
    import pandas as pd

    frame = pd.DataFrame({h: list(range(50)) for h in HEADERS})
    frame["balance"] = [0.5] * 50
    frame["full_name"] = ["x"] * 50
    outcome = Deidentifier.prepare(PIIConfig()).run(frame)
    assert list(outcome.frame.columns)[3:] == ["balance", "full_name"]
    renamed = outcome.details["headers"]
    assert [h["position"] for h in renamed] == [0, 1, 2]
    assert {t for h in renamed for t in h["entity_types"]} >= {"EMAIL_ADDRESS", "PERSON"}
    text = everything(outcome)
    assert not [h for h in (*HEADERS, "Quillfeather", "867-5309") if h in text]
    assert outcome.result.verdict.value == "warn"
    assert outcome.frame.iloc[:, 0].tolist() == list(range(50))
    assert outcome.sources[outcome.frame.columns[1]] == HEADERS[1]
