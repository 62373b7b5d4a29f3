"""Canary values through validation and de-identification: none reaches any evidence."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.settings import Settings, mlsecops_home
from mlsecops_provider.include.generator import LABEL, generate
from tests.operators.fakes import FakeTaskInstance

CANARIES = {
    "full_name": "Xanthippe Vorderbrugge",
    "email": "xanthippe.vorderbrugge@example.net",
    "phone": "(646) 555-0199",
    "ssn": "078-05-1120",
    "card_number": "4000056655665556",
    "iban": "DE89370400440532013000",
    "ip_address": "198.51.100.23",
}
NOTE = (
    "Xanthippe Vorderbrugge phoned from (646) 555-0199, mail xanthippe.vorderbrugge@example.net"
    ", SSN 078-05-1120."
)
PLANTED = [*CANARIES.values(), "Vorderbrugge", "Xanthippe", "555-0199", "078-05-1120"]
SUITE = {
    "name": "canary",
    "expectations": [
        {
            "type": "expect_column_most_common_value_to_be_in_set",
            "kwargs": {"column": "full_name", "value_set": ["nobody"]},
            "severity": "info",
        },
        {
            "type": "expect_column_distinct_values_to_be_in_set",
            "kwargs": {"column": "email", "value_set": ["x"]},
            "severity": "info",
        },
        {
            "type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "notes", "regex": "^zzz"},
            "severity": "info",
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "ssn", "value_set": ["1"]},
            "severity": "info",
        },
        {
            "type": "expect_column_max_to_be_between",
            "kwargs": {"column": "phone", "max_value": 1},
            "severity": "info",
        },
    ],
}


def _evidence_text(root: Path) -> str:
    """Every file under MLSECOPS_HOME but the datasets themselves (evidence, MLflow DB,
    artifacts, data docs), decoded loosely so that SQLite pages are searched too."""
    parts = []
    for path in root.rglob("*"):
        if path.is_file() and path.suffix not in (".parquet", ".csv"):
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


def test_canary_values_reach_no_evidence_log_xcom_or_mlflow(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Plants known PII, runs the validation gate (an expectation on every PII column,
    keep_unexpected_values on) and the de-identification gate, then greps every evidence
    file, Data Docs page, log line, XCom value and MLflow param, tag and metric."""
    from mlsecops_provider.core.tracking.lineage import LineageRecorder, RunKey
    from mlsecops_provider.operators.pii import PIIDeidentifyOperator
    from mlsecops_provider.operators.validation import DataValidationOperator

    frame = generate(120, seed=31)
    for column, value in CANARIES.items():
        frame.loc[[0, 1, 2], column] = value
    frame.loc[[0, 1, 2], "notes"] = NOTE
    ref = write_table(frame, (tmp_path / "canary.parquet").as_uri()).to_dict()
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps(SUITE))
    policy = tmp_path / "policy.yaml"
    policy.write_text("gates:\n  data_validation:\n    keep_unexpected_values: true\n")
    ti = FakeTaskInstance("manual__pii_canary", "pii_canary")
    validate = DataValidationOperator(
        task_id="validate",
        dataset=ref,
        suite=str(suite),
        label_column=LABEL,
        policy_path=str(policy),
    )
    deidentify = PIIDeidentifyOperator(task_id="deidentify", dataset=ref, label_column=LABEL)
    with caplog.at_level(logging.DEBUG):
        validated = validate.execute({"ti": ti})
        returned = deidentify.execute({"ti": ti})
    assert returned["gate"]["verdict"] in ("pass", "warn")

    lineage = LineageRecorder(Settings.from_env())
    run = lineage.client.get_run(lineage.run_for(RunKey("pii_canary", ti.run_id)))
    mlflow_text = json.dumps([run.data.params, run.data.tags, run.data.metrics])
    exposed = {
        "logs": caplog.text,
        "xcom": json.dumps([validated, returned, ti.xcom], default=str),
        "mlflow": mlflow_text,
        "files": _evidence_text(mlsecops_home()),
    }
    leaks = {where: [v for v in PLANTED if v in text] for where, text in exposed.items()}
    assert leaks == {where: [] for where in exposed}
    assert "data_docs.html" in exposed["files"] or validated.get("data_docs_uri")
