"""Small tables for the PII attack tests (shared helpers, not a test module)."""

from __future__ import annotations

import json
from typing import Any


def luhn_complete(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)


def cards(n: int, prefix: str = "4") -> list[str]:
    return [luhn_complete(f"{prefix}{i:014d}"[:15]) for i in range(1, n + 1)]


def everything(outcome: Any) -> str:
    """The output table, the report and the result as one string, to grep for values."""
    frame = outcome.frame
    cells = " | ".join(map(str, frame.columns)) + "\n" + frame.astype(str).to_csv(index=False)
    return cells + json.dumps([outcome.details, outcome.result.to_dict()], default=str)
