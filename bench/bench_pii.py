"""Benchmark of PII de-identification against naive per-cell Presidio (a script, not a test).

Run: ``.venv/bin/python bench/bench_pii.py [--rows 20000] [--naive-rows 60]
[--unseen-rows 4000] [--processes 2]``; ``--streaming-mb N [--chunk-rows 50000]`` only
measures the streaming gate's peak memory on a generated N MB CSV.

Two tables, both with free text in which **every value is distinct**:

* *demo*: the demo generator's PII and feature columns, with notes composed per row (2-3
  sentences, the row's name, e-mail, phone or SSN, dates, amounts and a ticket number).
  Our gate runs on all rows; naive per-cell Presidio (``analyze`` + ``anonymize`` on every
  cell, full spaCy pipeline, all recognizers) on the first ``--naive-rows`` rows, in the
  same run; rows/s of both, the ratio, recall per type, peak memory.
* *unseen*: a second generator written separately and never tuned on: other name pools
  (none in the gate's lexicon), other column and name styles ("LAST, First", initials),
  chat-style memos with names lower-cased, possessive, surname-only, and names of people
  who appear nowhere else in the table. Recall of names in free text is reported for names
  also in the table's name column (any row) and for names that appear nowhere else.
"""

from __future__ import annotations

import argparse
import logging
import re
import resource
import time
from typing import Any

from mlsecops_provider.core.pii.engine import (
    DEFAULT_NLP_MODEL,
    IGNORED_LABELS,
    LANGUAGE,
    NER_MAPPING,
    offline_tld_extractor,
)
from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig
from mlsecops_provider.core.pii.transform import measure_recall
from mlsecops_provider.include.generator import LABEL, PII_COLUMNS, generate

PII = ["full_name", "email", "phone", "ssn", "card_number", "iban", "street_address"]
TEXT = "notes"
CLEAN = ["age", "annual_income", "loan_amount", "employment_type", "region", LABEL]
SENTENCES = (
    "Customer {full_name} called on {date} about loan {ticket} and asked us to email {email}.",
    "Spoke with {full_name}; callback number is {phone}, best after {hour} pm.",
    "{full_name} requested a statement for {month}; verified SSN {ssn}.",
    "Payment of {amount} dollars arranged. Contact {email} for follow-up.",
    "Income documents for case {ticket} complete, reviewed by the {team} team.",
    "No issues found during the {month} review of file {ticket}.",
    "Left a voicemail on {phone} regarding the {amount} dollar balance.",
)
MONTHS = ("January", "March", "April", "June", "September", "November")
TEAMS = ("credit", "risk", "operations", "collections")

# --- the unseen generator: separate pools, none of these names is in the gate's lexicon --
U_FIRST = [
    "Aarav",
    "Beatrix",
    "Cosimo",
    "Dagny",
    "Eamon",
    "Fenella",
    "Gideon",
    "Henrike",
    "Idris",
    "Jolanta",
    "Kasimir",
    "Lorcan",
    "Mireille",
    "Nikhil",
    "Ottilie",
    "Pilar",
    "Quentin",
    "Rosalind",
    "Soren",
    "Thandiwe",
    "Ulrich",
    "Vesna",
    "Wendell",
    "Xiomara",
    "Yannick",
    "Zuzana",
    "Anselm",
    "Brigida",
    "Caspian",
    "Delphine",
]
U_LAST = [
    "Abernathy",
    "Brannigan",
    "Castellanos",
    "Drummond",
    "Eberhardt",
    "Fairweather",
    "Gallardo",
    "Hawthorne",
    "Ingram",
    "Jablonski",
    "Kavanagh",
    "Lindqvist",
    "Montague",
    "Nakashima",
    "Oyelaran",
    "Pemberton",
    "Quimby",
    "Radcliffe",
    "Stroud",
    "Thistlewood",
    "Underhill",
    "Valdivia",
    "Whitcombe",
    "Yarborough",
    "Zielinski",
    "Achterberg",
    "Blackwood",
    "Coppola",
    "Dunmore",
    "Everhart",
]
ELSEWHERE_FIRST = [
    "Ambrose",
    "Cordelia",
    "Evander",
    "Giselle",
    "Ignatius",
    "Leopold",
    "Marisol",
    "Octavia",
    "Percival",
    "Seraphina",
    "Tobias",
    "Wilhelmina",
    "Bartholomew",
    "Esperanza",
    "Florian",
    "Imogen",
    "Lysander",
    "Philippa",
    "Rufus",
    "Tamsin",
]
ELSEWHERE_LAST = [
    "Ashcombe",
    "Bellweather",
    "Crowther",
    "Delacroix",
    "Elsworth",
    "Farquhar",
    "Grimshaw",
    "Hollingsworth",
    "Ironside",
    "Kettering",
    "Lockhart",
    "Merriweather",
    "Northcott",
    "Ormsby",
    "Pendergast",
    "Rutherford",
    "Sackville",
    "Trelawney",
    "Vandermeer",
    "Winterbottom",
]
MEMOS = (
    "hi, this is {other} again - pls call me on {mobile} re: the refund",
    "{other_lower} says the card was never received, escalate to {elsewhere}",
    "Mtg w/ {elsewhere} (branch mgr) + {other}. outcome: fee waived #{ticket}",
    "cust emailed from {contact}, wants {other_last}'s statement too",
    "Dr. {elsewhere_last} confirmed the hardship letter on {date}",
    "ticket {ticket}: {elsewhere} disputes charge, contact via {contact} or {mobile}",
    "per {other_first}, spouse {elsewhere} is co-borrower now",
    "nothing to add. balance {amount}, next review {date}",
    "Note from {elsewhere}: please stop calling {mobile} after 8pm",
    "{other} and {elsewhere} visited the branch on {date} about ticket {ticket}",
)


# --- the holdout generator: written after the last change to the gate, run once ---------
H_FIRST = [
    "Alaric",
    "Brisa",
    "Corentin",
    "Dervla",
    "Elio",
    "Fionnuala",
    "Gaspard",
    "Halvard",
    "Isaura",
    "Jovana",
    "Kestrel",
    "Ludovic",
    "Maelle",
    "Nuno",
    "Orla",
    "Paloma",
    "Rainer",
    "Saoirse",
    "Teodor",
    "Ulla",
    "Valter",
    "Wren",
    "Yolanda",
    "Zoltan",
]
H_LAST = [
    "Arbuthnot",
    "Brackenridge",
    "Cavendish",
    "Dalgleish",
    "Esterhazy",
    "Featherstone",
    "Gwynne",
    "Haverford",
    "Inchcliffe",
    "Jessop",
    "Kilbride",
    "Llewellyn",
    "Mordaunt",
    "Nettleship",
    "Osgood",
    "Penhaligon",
    "Quarrington",
    "Rossiter",
    "Stanhope",
    "Tolliver",
    "Umfreville",
    "Villiers",
    "Wedgwood",
    "Yeardley",
]
H_STAFF = ("Ingrid Solvang", "Tomasz Wrobel", "Adaora Nwachukwu", "Benedikt Aschauer")
H_ELSEWHERE = (
    "Casimir Oakenfold",
    "Perpetua Lindenhurst",
    "Ysolde Marchbanks",
    "Ferdinand Quayle",
    "Clementine Aldous",
    "Lazarus Pettigrew",
    "Ottoline Braithwaite",
    "Hieronymus Dunstable",
)
H_BODIES = (
    "Dear {staff},\n{req_first} here. My number changed to {phone}. Regards, {req}",
    "From: {req} <{email}>\nSubject: refund\nHi {staff_first}, my neighbour {else_} got the "
    "same error.",
    "Escalated by {staff} on {date}: customer {req_last} unhappy; cc {else_}",
    "{else_} reported it first; {req_first} confirmed on {date}.",
    "Called {phone}, no answer. Will retry tomorrow.",
    "Per our call, Mr. {else_last} will send the documents to {staff_first}.",
    "thanks {req_first_lower}! closing this one",
    "Names on account: {req}; {else_}. Verified by {staff}.",
)


def holdout_table(rows: int, seed: int) -> tuple[Any, list[list[tuple[str, str]]]]:
    """A support-ticket table (third generator): ``(frame, planted)`` as for unseen_table."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    first, last = rng.choice(H_FIRST, rows), rng.choice(H_LAST, rows)
    req = [f"{f} {s}" for f, s in zip(first, last, strict=True)]
    email = [f"{f.lower()}{s.lower()}@support.example.io" for f, s in zip(first, last, strict=True)]
    phone = [f"+1-202-555-{int(x):04d}" for x in rng.integers(0, 9999, rows)]
    staff = rng.choice(H_STAFF, rows)
    bodies, planted = [], []
    for i in range(rows):
        j, k = int(rng.integers(0, rows)), int(rng.integers(0, rows))
        other = str(rng.choice(H_ELSEWHERE))
        fill = {
            "req": req[j], "req_first": str(first[j]), "req_last": str(last[j]),
            "req_first_lower": str(first[j]).lower(), "staff": str(staff[k]),
            "staff_first": str(staff[k]).split()[0], "else_": other,
            "else_last": other.split()[1], "email": email[j], "phone": phone[i],
            "date": f"{int(rng.integers(1, 29))}/{int(rng.integers(1, 13))}/2025",
        }  # fmt: skip
        template = H_BODIES[int(rng.integers(0, len(H_BODIES)))]
        bodies.append(template.format(**fill))
        kinds = {"else_": "PERSON (nowhere else)", "else_last": "PERSON (nowhere else)",
                 "email": "EMAIL_ADDRESS", "phone": "PHONE_NUMBER"}  # fmt: skip
        keys = re.findall(r"{(\w+)}", template)
        planted.append([(kinds.get(k, "PERSON (in table)"), fill[k]) for k in keys if k != "date"])
    frame = pd.DataFrame(
        {
            "requester": req, "requester_email": email, "assignee": staff, "phone": phone,
            "priority": rng.choice(["low", "normal", "high"], rows),
            "hours": np.round(rng.gamma(1.5, 2.0, rows), 1), "body": bodies,
        }
    )  # fmt: skip
    return frame, planted


# --- the fresh generator: written after the last change to the gate, run once -----------
F_FIRST = [
    "Maeve",
    "Desmond",
    "Anouk",
    "Tiberius",
    "Solveig",
    "Cyrus",
    "Marguerite",
    "Emeric",
    "Nadia",
    "Roisin",
    "Osric",
    "Liesel",
    "Bram",
    "Catalina",
    "Evren",
    "Hollis",
    "Jurgen",
    "Katrien",
    "Lavinia",
    "Matthias",
    "Noemi",
    "Piers",
    "Renata",
    "Sefton",
]
F_LAST = [
    "O'Sullivan",
    "Reyes-Whitby",
    "Van",
    "der",
    "Berg",
    "McAllister",
    "Kowalczyk",
    "Abernethy-Shaw",
    "Delacourt",
    "Fitzwilliam",
    "Grisham",
    "Halloran",
    "Ilyasova",
    "Jorgensen",
    "Kinsella",
    "Lachance",
    "Marchetti",
    "Nakagawa",
    "Oduya",
    "Prendergast",
    "Quiroga",
    "Rasmussen",
    "Szymanski",
    "Thornbury",
]
F_VISITORS = ("Barnaby Wexford", "Cressida Holm", "Thaddeus Rook", "Leocadia Fenn", "Ignatz Brill")
F_NOTES = (
    "Patient {name} (DOB on file) rescheduled; contact {email}.",
    "{last}, {first} - follow-up booked by reception, phone {phone}",
    "Referred to Dr. {visitor_last} by {first}'s GP.",
    "{visitor} accompanied {first} {last} to the appointment.",
    "no show. left msg for {first_lower} on {phone}",
    "Lab results sent to {email}; reviewed with {visitor}.",
    "Interpreter {visitor} booked for {name}.",
    "Routine check, nothing to report.",
)


def fresh_table(rows: int, seed: int) -> tuple[Any, list[list[tuple[str, str]]]]:
    """A clinic table (fourth generator): ``(frame, planted)`` as for unseen_table."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    first, last = rng.choice(F_FIRST, rows), rng.choice(F_LAST, rows)
    names = [f"{f} {s}" for f, s in zip(first, last, strict=True)]
    email = [f"{f[0].lower()}{i}@clinic.example.org" for i, f in enumerate(first)]
    phone = [
        f"0{int(x):3d} {int(y):03d} {int(z):04d}" for x, y, z in rng.integers(100, 999, (rows, 3))
    ]
    notes, planted = [], []
    for _i in range(rows):
        j = int(rng.integers(0, rows))
        visitor = str(rng.choice(F_VISITORS))
        fill = {
            "name": names[j], "first": str(first[j]), "last": str(last[j]),
            "first_lower": str(first[j]).lower(), "email": email[j], "phone": phone[j],
            "visitor": visitor, "visitor_last": visitor.split()[1],
        }  # fmt: skip
        template = F_NOTES[int(rng.integers(0, len(F_NOTES)))]
        notes.append(template.format(**fill))
        kinds = {"visitor": "PERSON (nowhere else)", "visitor_last": "PERSON (nowhere else)",
                 "email": "EMAIL_ADDRESS", "phone": "PHONE_NUMBER"}  # fmt: skip
        keys = re.findall(r"{(\w+)}", template)
        planted.append([(kinds.get(k, "PERSON (in table)"), fill[k]) for k in keys])
    frame = pd.DataFrame(
        {
            "patient": names, "email": email, "phone": phone,
            "clinic": rng.choice(["north", "south"], rows),
            "visits": rng.integers(1, 20, rows), "note": notes,
        }
    )  # fmt: skip
    return frame, planted


# --- the payroll generator: written after the last change to the gate, run once ---------
P_FIRST = [
    "Anne-Sophie",
    "Jean-Luc",
    "Zoë",
    "Björn",
    "Mateus",
    "Sinéad",
    "Dácil",
    "Oluwadamilare",
    "Thi",
    "Hoa",
    "Radomir",
    "Ekaterina",
    "Mihaela",
    "Dariusz",
    "Wojciech",
    "Ingeborg",
    "Lucrezia",
    "Bartosz",
    "Gwendolyn",
    "Aurelio",
    "Sigrun",
    "Hamish",
    "Tomasina",
]
P_LAST = [
    "D'Angelo",
    "Nguyễn",
    "Øvergaard",
    "Castañeda",
    "Müller-Hahn",
    "Ó",
    "Briain",
    "Przybylski",
    "Vasquez-Lind",
    "Abramowicz",
    "Featherby",
    "Gundersen",
    "Hrabowski",
    "Iredale",
    "Jankowiak",
    "Krumholz",
    "Lettice",
    "Mabuza",
]
P_OTHERS = (
    "Rowena Tisdale",
    "Evangelos Pappas",
    "Marisa Quenby",
    "Cornelius Voss",
    "Ines Albrecht",
)
P_TEXT = (
    "Overtime approved by {other}; {first} to submit timesheet.",
    "{name}'s manager {other} flagged the expense claim",
    "Salary change for {last} (see {email}), effective next month.",
    "bank details updated per call with {first_lower} {last_lower}",
    "{other}/{name}: shared parental leave request",
    "Payslip queries go to {email} or {phone}.",
    "Reference provided to {other} at the new employer.",
    "Contract renewed without changes.",
)


def payroll_table(rows: int, seed: int) -> tuple[Any, list[list[tuple[str, str]]]]:
    """An HR table (fifth generator): ``(frame, planted)`` as for unseen_table."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    first, last = rng.choice(P_FIRST, rows), rng.choice(P_LAST, rows)
    names = [f"{f} {s}" for f, s in zip(first, last, strict=True)]
    email = [f"emp{i:05d}@hr.example.com" for i in range(rows)]
    phone = [f"+49 30 {int(x):07d}" for x in rng.integers(1000000, 9999999, rows)]
    texts, planted = [], []
    for _i in range(rows):
        j = int(rng.integers(0, rows))
        fill = {
            "name": names[j], "first": str(first[j]), "last": str(last[j]),
            "first_lower": str(first[j]).lower(), "last_lower": str(last[j]).lower(),
            "email": email[j], "phone": phone[j], "other": str(rng.choice(P_OTHERS)),
        }  # fmt: skip
        template = P_TEXT[int(rng.integers(0, len(P_TEXT)))]
        texts.append(template.format(**fill))
        kinds = {"other": "PERSON (nowhere else)", "email": "EMAIL_ADDRESS",
                 "phone": "PHONE_NUMBER"}  # fmt: skip
        keys = re.findall(r"{(\w+)}", template)
        planted.append([(kinds.get(k, "PERSON (in table)"), fill[k]) for k in keys])
    frame = pd.DataFrame(
        {
            "employee": names, "work_email": email, "phone": phone,
            "grade": rng.integers(1, 9, rows), "salary": np.round(rng.normal(52000, 9000, rows), 2),
            "hr_note": texts,
        }
    )  # fmt: skip
    return frame, planted


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def demo_table(rows: int, seed: int) -> Any:
    """The demo generator's table with distinct notes composed per row."""
    import numpy as np

    frame = generate(rows, seed=seed)
    rng = np.random.default_rng(seed + 1)
    notes = []
    for i, row in enumerate(frame[PII].itertuples(index=False)):
        values = dict(zip(PII, row, strict=True))
        values.update(_fillers(rng, i))
        picked = rng.choice(len(SENTENCES), size=int(rng.integers(2, 4)), replace=False)
        notes.append(" ".join(SENTENCES[k].format(**values) for k in picked))
    frame[TEXT] = notes
    return frame[[*PII, "ip_address", TEXT, *CLEAN]]


def _fillers(rng: Any, i: int) -> dict[str, Any]:
    return {
        "date": f"2025-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}",
        "ticket": f"T{i:06d}{int(rng.integers(0, 10))}",
        "hour": int(rng.integers(1, 9)),
        "month": str(rng.choice(MONTHS)),
        "amount": f"{int(rng.integers(50, 20000)):,}",
        "team": str(rng.choice(TEAMS)),
    }


def unseen_table(rows: int, seed: int) -> tuple[Any, list[list[tuple[str, str]]]]:
    """The second generator: ``(frame, planted)``, planted = per row [(kind, value)]."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    first = rng.choice(U_FIRST, rows)
    last = rng.choice(U_LAST, rows)
    styles = rng.integers(0, 3, rows)
    names = [
        (f"{f} {sn}", f"{sn.upper()}, {f}", f"{f} {chr(65 + i % 26)}. {sn}")[s]
        for i, (f, sn, s) in enumerate(zip(first, last, styles, strict=True))
    ]
    contact = [
        f"{f[0].lower()}.{sn.lower()}{i % 97}@mail.example.co.uk"
        for i, (f, sn) in enumerate(zip(first, last, strict=True))
    ]
    mobile = [
        f"+44 7700 9{int(x):05d}" if i % 2 else f"(212) 555-{int(x) % 10000:04d}"
        for i, x in enumerate(rng.integers(0, 99999, rows))
    ]
    memos, planted = [], []
    for i in range(rows):
        j = int(rng.integers(0, rows))  # a person from any row of the table
        ef, el = str(rng.choice(ELSEWHERE_FIRST)), str(rng.choice(ELSEWHERE_LAST))
        fill = {
            "other": f"{first[j]} {last[j]}",
            "other_lower": f"{first[j]} {last[j]}".lower(),
            "other_first": str(first[j]),
            "other_last": str(last[j]),
            "elsewhere": f"{ef} {el}",
            "elsewhere_last": el,
            "contact": contact[i],
            "mobile": mobile[i],
            **_fillers(rng, i),
        }
        template = MEMOS[int(rng.integers(0, len(MEMOS)))]
        memos.append(template.format(**fill))
        planted.append(_planted(template, fill))
    frame = pd.DataFrame(
        {
            "client": names,
            "contact": contact,
            "mobile": mobile,
            "balance": np.round(rng.gamma(2.0, 900.0, rows), 2),
            "segment": rng.choice(["retail", "sme", "private"], rows),
            "memo": memos,
        }
    )
    return frame, planted


def _planted(template: str, fill: dict[str, Any]) -> list[tuple[str, str]]:
    kinds = {
        "other": "PERSON (in table)", "other_lower": "PERSON (in table)",
        "other_first": "PERSON (in table)", "other_last": "PERSON (in table)",
        "elsewhere": "PERSON (nowhere else)", "elsewhere_last": "PERSON (nowhere else)",
        "contact": "EMAIL_ADDRESS", "mobile": "PHONE_NUMBER",
    }  # fmt: skip
    return [(kinds[k], str(fill[k])) for k in re.findall(r"{(\w+)}", template) if k in kinds]


def text_recall(before: list[str], after: list[str], planted: list[list[tuple[str, str]]]) -> dict:
    """Per kind: planted values, caught (no word of a name left; other values not whole)."""
    tally: dict[str, list[int]] = {}
    for text, items in zip(after, planted, strict=True):
        for kind, value in items:
            caught = tally.setdefault(kind, [0, 0])
            caught[0] += 1
            if kind.startswith("PERSON"):
                words = [w for w in re.split(r"\W+", value) if len(w) > 1]
                leak = any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.I) for w in words)
            else:
                leak = value in text
            caught[1] += not leak
    return {
        k: {"planted": n, "caught": c, "recall": round(c / n, 4)} for k, (n, c) in tally.items()
    }


def run_ours(frame: Any, config: PIIConfig) -> tuple[float, float, Any]:
    deidentifier = Deidentifier.prepare(config)
    start, cpu = time.perf_counter(), time.process_time()
    outcome = deidentifier.run(frame)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    m = outcome.result.metrics
    print(
        f"  {len(frame)} rows in {seconds:.1f} s (parent cpu {cpu:.1f} s; detect "
        f"{m['seconds_detect']} s, transform {m['seconds_transform']} s, verify "
        f"{m['seconds_verify']} s), verdict {outcome.result.verdict.value}, "
        f"residual max {m['residual_rate_max']:.4%}; spaCy read {m['ner_texts']} texts"
    )
    return len(frame) / seconds, seconds, outcome


def naive_engine() -> tuple[Any, Any]:
    """Presidio as documented: full spaCy pipeline, every predefined recognizer (offline)."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import EmailRecognizer
    from presidio_anonymizer import AnonymizerEngine

    nlp_configuration = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": LANGUAGE, "model_name": DEFAULT_NLP_MODEL}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": NER_MAPPING,
            "labels_to_ignore": list(IGNORED_LABELS),
        },
    }
    nlp_engine = NlpEngineProvider(nlp_configuration=nlp_configuration).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=[LANGUAGE])

    class OfflineEmail(EmailRecognizer):  # the same offline suffix list as ours
        def validate_result(self, pattern_text: str) -> bool:
            return bool(offline_tld_extractor()(pattern_text).fqdn)

    analyzer.registry.remove_recognizer("EmailRecognizer")
    analyzer.registry.add_recognizer(OfflineEmail())
    return analyzer, AnonymizerEngine()


def run_naive(frame: Any) -> tuple[float, Any]:
    analyzer, anonymizer = naive_engine()
    analyzer.analyze("warm up John Smith", LANGUAGE)
    out = frame.copy()
    start = time.perf_counter()
    for column in frame.columns:
        cells = []
        for value in frame[column].astype(str):
            results = analyzer.analyze(value, LANGUAGE)
            cells.append(anonymizer.anonymize(value, results).text)
        out[column] = cells
    seconds = time.perf_counter() - start
    print(f"  {len(frame)} rows x {frame.shape[1]} cells in {seconds:.1f} s")
    return len(frame) / seconds, out


def demo_recall(before: Any, after: Any) -> dict[str, Any]:
    planted = {c: (PII_COLUMNS[c], before[c].astype(str).tolist()) for c in PII}
    return measure_recall(before, after, planted, [TEXT])


def large_csv(path: Any, megabytes: int) -> int:
    """A CSV of about ``megabytes`` MB (ids, amounts, codes, an e-mail column, long clean
    text of few distinct values: cheap per row, so the figure is about memory); its rows."""
    pad = ["alpha" * 24, "bravo" * 24, "charlie" * 17, "delta" * 24]
    rows = 0
    with open(path, "w") as handle:
        handle.write("id,amount,code,status,email,padding\n")
        while handle.tell() < megabytes * 1_000_000:
            handle.write(
                "".join(
                    f"{rows + i},{(rows + i) % 997}.{i % 100:02d},C{i % 50:04d},"
                    f"{'open' if i % 3 else 'closed'},user{i % 400}@example.org,{pad[i % 4]}\n"
                    for i in range(5000)
                )
            )
            rows += 5000
    return rows


def bench_streaming(megabytes: int, chunk_rows: int) -> None:
    """Peak memory of the streaming gate on a generated ``megabytes`` MB CSV (run first, in
    a fresh process, so that the peak is this run's)."""
    import tempfile
    from pathlib import Path

    from mlsecops_provider.core.pii.chunks import ChunkSink, open_source
    from mlsecops_provider.core.pii.stream import run_stream

    with tempfile.TemporaryDirectory(prefix="bench-pii-") as work:
        source, target = Path(work) / "large.csv", Path(work) / "out.csv"
        rows = large_csv(source, megabytes)
        size = source.stat().st_size / 1e6
        deid = Deidentifier.prepare(PIIConfig(chunk_rows=chunk_rows))
        loaded = peak_rss_mib()
        start = time.perf_counter()
        with (
            open_source(source.as_uri(), chunk_rows=chunk_rows) as chunks,
            ChunkSink(target.as_uri(), chunks.format) as sink,
        ):
            streamed = run_stream(deid, chunks, sink)
            sink.publish()
        seconds = time.perf_counter() - start
        peak = peak_rss_mib()
    print(
        f"streaming: {size:.0f} MB CSV, {rows} rows, {streamed.chunks} chunks of "
        f"{chunk_rows} rows, {seconds:.1f} s ({rows / seconds:.0f} rows/s), verdict "
        f"{streamed.outcome.result.verdict.value}"
    )
    print(
        f"peak RSS: {loaded:.0f} MiB after loading the engine, {peak:.0f} MiB at the end "
        f"(growth {peak - loaded:.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--naive-rows", type=int, default=60)
    parser.add_argument("--unseen-rows", type=int, default=4000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--streaming-mb",
        type=int,
        metavar="N",
        help="only measure the streaming gate's peak memory on a generated N MB CSV",
    )
    parser.add_argument("--chunk-rows", type=int, default=50_000, help="with --streaming-mb")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    if args.streaming_mb:
        bench_streaming(args.streaming_mb, args.chunk_rows)
        return
    config = PIIConfig(exclude_columns=(LABEL,), nlp_processes=args.processes)

    frame = demo_table(args.rows, args.seed)
    print(
        f"demo table: {len(frame)} rows, {frame.shape[1]} columns, "
        f"{frame[TEXT].nunique()} distinct notes"
    )
    print("ours (demo):")
    ours, _, outcome = run_ours(frame, config)
    recall = demo_recall(frame, outcome.frame)
    same = all(outcome.frame[c].equals(frame[c]) for c in CLEAN)
    rss_ours, rss_children = peak_rss_mib(), peak_rss_mib(resource.RUSAGE_CHILDREN)
    print("naive (demo, first rows):")
    head = frame.head(args.naive_rows)
    naive, naive_out = run_naive(head)
    naive_recall = demo_recall(head, naive_out)

    unseen, planted = unseen_table(args.unseen_rows, args.seed + 100)
    print(f"unseen table: {len(unseen)} rows, {unseen['memo'].nunique()} distinct memos")
    print("ours (unseen):")
    rate_unseen, _, done = run_ours(unseen, PIIConfig(nlp_processes=args.processes))
    unseen_recall = text_recall(unseen["memo"].tolist(), done.frame["memo"].tolist(), planted)
    print("naive (unseen, first rows):")
    naive_unseen, _ = run_naive(unseen.head(args.naive_rows))
    columns_ok = {
        c: not set(unseen[c]) & set(done.frame[c].astype(str))
        for c in ("client", "contact", "mobile")
    }
    holdout, held = holdout_table(args.unseen_rows, args.seed + 200)
    print(f"holdout table: {len(holdout)} rows, {holdout['body'].nunique()} distinct bodies")
    print("ours (holdout):")
    rate_holdout, _, kept = run_ours(holdout, PIIConfig(nlp_processes=args.processes))
    holdout_recall = text_recall(holdout["body"].tolist(), kept.frame["body"].tolist(), held)
    fresh, planted_fresh = fresh_table(args.unseen_rows, args.seed + 300)
    print(f"fresh table: {len(fresh)} rows, {fresh['note'].nunique()} distinct notes")
    print("ours (fresh):")
    rate_fresh, _, cleaned = run_ours(fresh, PIIConfig(nlp_processes=args.processes))
    fresh_recall = text_recall(
        fresh["note"].tolist(), cleaned.frame["note"].tolist(), planted_fresh
    )
    payroll, planted_payroll = payroll_table(args.unseen_rows, args.seed + 400)
    print(f"payroll table: {len(payroll)} rows, {payroll['hr_note'].nunique()} distinct notes")
    print("ours (payroll):")
    rate_payroll, _, paid = run_ours(payroll, PIIConfig(nlp_processes=args.processes))
    payroll_recall = text_recall(
        payroll["hr_note"].tolist(), paid.frame["hr_note"].tolist(), planted_payroll
    )

    print(f"\n{'rows/s':<28}{'ours':>10}{'naive':>10}{'ratio':>8}")
    print(f"{'demo (distinct notes)':<28}{ours:>10.1f}{naive:>10.2f}{ours / naive:>7.1f}x")
    ratio_unseen = rate_unseen / naive_unseen
    print(f"{'unseen':<28}{rate_unseen:>10.1f}{naive_unseen:>10.2f}{ratio_unseen:>7.1f}x")
    print(f"{'holdout':<28}{rate_holdout:>10.1f}")
    print(f"{'fresh':<28}{rate_fresh:>10.1f}")
    print(f"{'payroll':<28}{rate_payroll:>10.1f}")
    print(f"peak RSS: {rss_ours:.0f} MiB (parent), {rss_children:.0f} MiB (largest child process)")
    print(f"demo non-PII columns and label identical: {same}")
    print(f"\n{'recall (demo)':<40}{'ours':>8}{'naive':>8}")
    for scope in ("columns", "free_text"):
        for entity, figures in sorted(recall[scope].items()):
            other = naive_recall[scope].get(entity, {}).get("recall", float("nan"))
            label = f"{scope}:{entity} (n={figures['planted']})"
            print(f"{label:<40}{figures['recall']:>8.4f}{other:>8.4f}")
    print(f"\n{'recall (unseen, free text)':<40}{'ours':>8}")
    for kind, figures in sorted(unseen_recall.items()):
        print(f"{kind + ' (n=' + str(figures['planted']) + ')':<40}{figures['recall']:>8.4f}")
    print(f"unseen PII columns fully replaced: {columns_ok}")
    tables = (("holdout", holdout_recall), ("fresh", fresh_recall), ("payroll", payroll_recall))
    for title, figures_by_kind in tables:
        print(f"\n{'recall (' + title + ', free text)':<40}{'ours':>8}")
        for kind, figures in sorted(figures_by_kind.items()):
            label = f"{kind} (n={figures['planted']})"
            print(f"{label:<40}{figures['recall']:>8.4f}")


if __name__ == "__main__":
    main()
