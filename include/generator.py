"""Deterministic demo data: a credit-risk style table with PII beside features and a label.

``generate(rows, seed)`` gives a clean batch. ``drift=True`` shifts the feature
distributions (incomes, regions, debt ratios) as a later production batch might;
``label_flip_rate`` and ``outlier_rate`` poison a batch (flipped labels, injected extreme
rows) for the validation gate's screens. :func:`pii_truth` lists every planted PII value by
column and entity type, so de-identification can be measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Nancy",
    "Daniel",
    "Lisa",
    "Matthew",
    "Betty",
    "Anthony",
    "Margaret",
    "Mark",
    "Sandra",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Paul",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenneth",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Melissa",
    "George",
    "Deborah",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
]
STREETS = [
    "Oak",
    "Maple",
    "Cedar",
    "Pine",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Main",
    "Sunset",
    "Lincoln",
]
STREET_KINDS = ("Street", "Avenue", "Road", "Lane", "Drive", "Boulevard")
CITIES = ("Springfield", "Riverside", "Franklin", "Greenville", "Bristol", "Clinton")
EMPLOYMENT = ("salaried", "self_employed", "unemployed", "retired", "student")
REGIONS = ("north", "south", "east", "west", "central")
PURPOSES = ("car", "home", "education", "business", "personal")
TERMS = (12, 24, 36, 48, 60)
LABEL = "default"
PII_COLUMNS = {
    "full_name": "PERSON",
    "email": "EMAIL_ADDRESS",
    "phone": "PHONE_NUMBER",
    "ssn": "US_SSN",
    "card_number": "CREDIT_CARD",
    "iban": "IBAN_CODE",
    "street_address": "LOCATION",
    "ip_address": "IP_ADDRESS",
}
TEXT_COLUMN = "notes"


def _luhn_complete(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)


def _iban_de(rng: np.random.Generator) -> str:
    bban = "".join(str(d) for d in rng.integers(0, 10, 18))
    numeric = int(bban + "131400")  # "DE" -> 13 14, check digits 00
    check = 98 - numeric % 97
    return f"DE{check:02d}{bban}"


def _person(rng: np.random.Generator) -> tuple[str, str, str]:
    first = str(rng.choice(FIRST_NAMES))
    last = str(rng.choice(LAST_NAMES))
    return first, last, f"{first} {last}"


def _pii_row(rng: np.random.Generator, i: int) -> dict[str, str]:
    first, last, full = _person(rng)
    area = int(rng.integers(201, 989))
    ssn = f"{int(rng.integers(101, 665)):03d}-{int(rng.integers(10, 99)):02d}-"
    ssn += f"{int(rng.integers(1000, 9999)):04d}"
    street = f"{int(rng.integers(1, 9999))} {rng.choice(STREETS)} {rng.choice(STREET_KINDS)}"
    return {
        "full_name": full,
        "email": f"{first.lower()}.{last.lower()}{i}@example.com",
        "phone": f"({area}) {int(rng.integers(200, 999))}-{int(rng.integers(1000, 9999))}",
        "ssn": ssn,
        "card_number": _luhn_complete("4" + "".join(str(d) for d in rng.integers(0, 10, 14))),
        "iban": _iban_de(rng),
        "street_address": f"{street}, {rng.choice(CITIES)}",
        "ip_address": ".".join(str(int(x)) for x in rng.integers(1, 255, 4)),
    }


def _note(rng: np.random.Generator, pii: dict[str, str]) -> str:
    templates = (
        "Customer {full_name} called about the loan and asked us to email {email}.",
        "Spoke with {full_name}; callback number is {phone}.",
        "Application reviewed, income documents complete.",
        "{full_name} requested a statement; verified SSN {ssn}.",
        "Payment arranged. Contact {email} for follow-up.",
        "No issues found during review.",
    )
    return str(rng.choice(templates)).format(**pii)


def generate(
    rows: int = 2000,
    seed: int = 7,
    *,
    drift: bool = False,
    label_flip_rate: float = 0.0,
    outlier_rate: float = 0.0,
) -> pd.DataFrame:
    """A deterministic batch; the same arguments always give the same table."""
    import numpy as np
    import pandas as pd

    if rows < 1:
        raise ValueError("rows must be at least 1")
    rng = np.random.default_rng(seed)
    pii = [_pii_row(rng, i) for i in range(rows)]
    frame = pd.DataFrame(pii)
    frame.insert(0, "customer_id", [f"C{seed:03d}{i:07d}" for i in range(rows)])
    frame[TEXT_COLUMN] = [_note(rng, p) for p in pii]
    _add_features(frame, rng, drift)
    _add_label(frame, rng)
    if label_flip_rate > 0:
        flip = rng.random(rows) < label_flip_rate
        frame.loc[flip, LABEL] = 1 - frame.loc[flip, LABEL]
    if outlier_rate > 0:
        _inject_outliers(frame, rng, outlier_rate)
    return frame


def _add_features(frame: pd.DataFrame, rng: np.random.Generator, drift: bool) -> None:
    import numpy as np

    n = len(frame)
    income_scale = 1.6 if drift else 1.0
    frame["age"] = rng.integers(18, 80, n)
    frame["annual_income"] = np.round(rng.lognormal(10.8, 0.45, n) * income_scale, 2)
    frame["loan_amount"] = np.round(rng.gamma(2.0, 6000.0, n) + 1000.0, 2)
    frame["loan_term_months"] = rng.choice(TERMS, n)
    frame["credit_history_months"] = rng.integers(0, 480, n)
    frame["num_open_accounts"] = rng.poisson(4, n)
    dti = rng.beta(2.0, 5.0, n) * (1.4 if drift else 1.0)
    frame["debt_to_income"] = np.round(np.clip(dti, 0.0, 1.5), 4)
    frame["employment_type"] = rng.choice(EMPLOYMENT, n, p=(0.55, 0.2, 0.08, 0.1, 0.07))
    region_p = (0.05, 0.05, 0.1, 0.1, 0.7) if drift else (0.2, 0.2, 0.2, 0.2, 0.2)
    frame["region"] = rng.choice(REGIONS, n, p=region_p)
    frame["purpose"] = rng.choice(PURPOSES, n)


def _add_label(frame: pd.DataFrame, rng: np.random.Generator) -> None:
    import numpy as np

    z = (
        -1.2
        + 3.0 * (frame["debt_to_income"] - 0.3)
        + 0.35 * (frame["loan_amount"] / frame["annual_income"] * 4 - 1)
        - 0.004 * frame["credit_history_months"] / 12
        + frame["employment_type"].map({"unemployed": 1.2, "student": 0.5}).fillna(0.0)
    )
    prob = 1.0 / (1.0 + np.exp(-z))
    frame[LABEL] = (rng.random(len(frame)) < prob).astype("int64")


def _inject_outliers(frame: pd.DataFrame, rng: np.random.Generator, rate: float) -> None:
    idx = rng.random(len(frame)) < rate
    count = int(idx.sum())
    frame.loc[idx, "annual_income"] = rng.uniform(5e6, 5e7, count).round(2)
    frame.loc[idx, "loan_amount"] = rng.uniform(1e6, 5e6, count).round(2)
    frame.loc[idx, "debt_to_income"] = 1.5


def pii_truth(frame: pd.DataFrame) -> dict[str, tuple[str, list[str]]]:
    """Every planted PII value, by column: ``{column: (entity_type, values)}``."""
    return {col: (entity, frame[col].astype(str).tolist()) for col, entity in PII_COLUMNS.items()}
