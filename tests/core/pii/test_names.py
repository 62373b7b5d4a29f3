"""Person names in free text: the table's deny list, the lexicon, context, NER."""

from __future__ import annotations

import pytest

from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig
from mlsecops_provider.core.pii.names import NameRules
from mlsecops_provider.core.pii.patterns import merge_spans


def _found(rules: NameRules, text: str) -> list[str]:
    return [text[s.start : s.end] for s in merge_spans(rules.find(text))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wants Hawthorne's statement", ["Hawthorne's"]),
        ("per gideon, the spouse is co-borrower", ["gideon"]),
        ("talked to gideon hawthorne re: refund", ["gideon", "hawthorne"]),
        ("GIDEON HAWTHORNE called", ["GIDEON HAWTHORNE"]),
        ("Gideon said hi", ["Gideon"]),
    ],
)
def test_deny_list_catches_table_names_in_any_form(text: str, expected: list[str]) -> None:
    rules = NameRules.from_values(["HAWTHORNE, Gideon"], use_lexicon=False)
    rules.dictionary = frozenset({"will", "rose"})
    assert _found(rules, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Customer Mary Quillbrook called", ["Mary Quillbrook"]),  # unknown surname goes along
        ("Spoke with Oyelaran Tamsk about it", ["Oyelaran Tamsk"]),  # context word
        ("Letter signed by Dr. Ashcombe today", ["Ashcombe"]),  # honorific
        ("Will you call back? Payment arranged.", []),  # a name that is also a word
        ("We met at the Rose Garden branch", ["Rose Garden"]),  # over-redaction is safe
        ("Income documents complete.", []),
    ],
)
def test_lexicon_and_context(text: str, expected: list[str]) -> None:
    assert _found(NameRules(), text) == expected


def test_names_in_free_text_from_any_row_and_from_nowhere_else() -> None:
    """A name from another row's name column, and a name nowhere in the table (NER)."""
    import pandas as pd

    people = [f"Ysolde{chr(97 + i)} Marchbank{chr(97 + i)}" for i in range(20)]
    notes = [
        f"Escalated by the desk; {people[(i + 7) % 20].split()[1]} disputes the charge."
        if i % 2
        else f"Our agent spoke with Ferdinand Quayle about invoice {i} yesterday afternoon."
        for i in range(20)
    ]
    frame = pd.DataFrame({"client_name": people, "notes": notes})
    outcome = Deidentifier.prepare(PIIConfig(seed=3)).run(frame)
    assert outcome.result.verdict.value == "pass"
    text = " ".join(outcome.frame["notes"])
    assert "Marchbank" not in text and "Quayle" not in text and "Ferdinand" not in text
    assert "<PERSON>" in text


def test_short_texts_with_names_are_text_not_a_name_column() -> None:
    """A column of short notes that mostly mention a person is handled value by value (the
    rest of each note stays), not replaced whole as if it held only names."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "client": [f"James Brown{'e' * (i % 3)}" for i in range(30)],
            "remark": [f"Ticket {i} from James Brown" for i in range(30)],
        }
    )
    outcome = Deidentifier.prepare(PIIConfig(seed=5)).run(frame)
    plans = {c["column"]: c["kind"] for c in outcome.details["columns"]}
    assert plans == {"client": "pii", "remark": "free_text"}
    assert outcome.frame["remark"][7] == "Ticket 7 from <PERSON>"
