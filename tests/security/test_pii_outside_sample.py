"""PII placed in rows that no sample reaches: the second scan checks every row."""

from __future__ import annotations

from typing import Any

import pytest

from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig

ROWS = 3000
PLANTED = {2999: "victim.person@example.net", 1501: "219-09-9999", 7: "(415) 867-5309"}


def _table() -> Any:
    import pandas as pd

    codes = [f"code-{i % 13}" for i in range(ROWS)]
    for row, value in PLANTED.items():
        codes[row] = value
    return pd.DataFrame({"code": codes, "amount": [float(i) / 7 for i in range(ROWS)]})


def test_pii_outside_the_plan_sample_fails_the_gate() -> None:
    """With a pinned seed whose sample misses the planted rows, the full scan still finds
    all three, names their rows, and the gate fails (callers publish nothing)."""
    frame = _table()
    for seed in range(40):
        plan_rows = set(frame["code"].sample(n=100, random_state=seed).index)
        if not plan_rows & set(PLANTED):
            break
    outcome = Deidentifier.prepare(PIIConfig(seed=seed)).run(frame)
    assert outcome.details["sampling"] == {"seed": seed, "fresh": False}
    assert outcome.result.verdict.value == "fail"
    residual = outcome.details["residual"]["columns"]["code"]
    assert residual["rows_with_pii"] == 3 and residual["rows_scanned"] == ROWS
    assert residual["example_rows"] == sorted(PLANTED)
    report = str([outcome.details, outcome.result.to_dict()])
    assert not [v for v in PLANTED.values() if v in report]


@pytest.mark.parametrize("run", range(2))
def test_fresh_seed_per_run_and_planted_pii_never_passes(run: int) -> None:
    """Unpinned: each run samples with a new recorded seed; either the plan saw a planted
    value (the column is then handled value by value and the values are gone) or the full
    scan fails the gate: planted PII is never published under a passing verdict."""
    frame = _table()
    first = Deidentifier.prepare(PIIConfig()).run(frame)
    second = Deidentifier.prepare(PIIConfig()).run(frame)
    assert first.details["sampling"]["fresh"] is True
    assert first.details["sampling"]["seed"] != second.details["sampling"]["seed"]
    for outcome in (first, second):
        published = set(outcome.frame["code"])
        if outcome.result.verdict.value != "fail":
            assert not set(PLANTED.values()) & published
        assert outcome.frame["amount"].equals(frame["amount"])
