"""Obfuscated e-mail addresses and phone numbers, in PII columns and in free text."""

from __future__ import annotations

from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig
from tests.security._pii_tables import everything

EMAILS = (
    "john.doe[at]example[dot]com",
    "jane (at) example (dot) org",
    "max.mustermann at example dot de",
    "li.wei{at}example{dot}cn",
    "ana.silva @ example.com.br",
    "joe.bloggs<at>example<dot>co<dot>uk",
)
PHONES = (
    "415 dot 867 dot 5309",
    "four one five eight six seven five three zero nine",
    "+44 20 7946 0958",
    "415 dash 867 dash 5309",
    "(415)8675309",
    "415 867 5309",
)


def test_obfuscated_contacts_are_found() -> None:
    """Each form is a PII column when a column holds it, and is replaced inside notes."""
    import pandas as pd

    rows = 60
    notes = [
        f"Reach me at {EMAILS[i % len(EMAILS)]} or on {PHONES[i % len(PHONES)]} after six, "
        f"thanks (ticket {i})"
        for i in range(rows)
    ]
    frame = pd.DataFrame(
        {
            "contact": [EMAILS[i % len(EMAILS)] for i in range(rows)],
            "tel": [PHONES[i % len(PHONES)] for i in range(rows)],
            "notes": notes,
        }
    )
    outcome = Deidentifier.prepare(PIIConfig()).run(frame)
    plans = {c["column"]: (c["kind"], c["entity"]) for c in outcome.details["columns"]}
    assert plans["contact"] == ("pii", "EMAIL_ADDRESS")
    assert plans["tel"] == ("pii", "PHONE_NUMBER")
    text = everything(outcome)
    leaked = [v for v in (*EMAILS, *PHONES) if v in text]
    assert not leaked
    for fragment in ("john.doe", "mustermann", "8675309", "867 dot", "eight six seven"):
        assert fragment not in text, fragment
    assert outcome.result.verdict.value == "pass"
