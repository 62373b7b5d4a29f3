"""PIIDeidentifyOperator end to end: real Presidio, evidence store and MLflow (session home)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.data.datasets import read_table, write_table
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import sha256_bytes
from mlsecops_provider.include.generator import LABEL, generate, pii_truth
from tests.operators.fakes import FakeTaskInstance

CANARIES = {
    "full_name": "Zebulon Quillfeather",
    "email": "zebulon.quillfeather@example.org",
    "phone": "(415) 867-5309",
    "ssn": "219-09-9999",
    "card_number": "4111111111111111",
    "iban": "GB82WEST12345698765432",
    "ip_address": "203.0.113.77",
}
CANARY_NOTE = (
    "Customer Zebulon Quillfeather called from (415) 867-5309; "
    "write to zebulon.quillfeather@example.org, SSN 219-09-9999."
)


@pytest.fixture()
def dataset(tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    frame = generate(150, seed=21)
    for column, value in CANARIES.items():
        frame.loc[0, column] = value
    frame.loc[0, "notes"] = CANARY_NOTE
    ref = write_table(frame, (tmp_path / "raw.parquet").as_uri())
    return frame, ref.to_dict()


def _policy(tmp_path: Path, body: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(f"version: 1\ngates:\n  pii_deidentification:\n{body}")
    return str(path)


def _target(run_id: str) -> Path:
    uri = Settings.from_env().run_artifact_uri("pii_test", run_id, "data", "deidentified.parquet")
    return Path(uri.removeprefix("file://"))


def test_writes_a_new_dataset_and_no_pii_reaches_logs_or_xcom(
    dataset: tuple[Any, dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    from mlsecops_provider.core.tracking.lineage import LineageRecorder, RunKey
    from mlsecops_provider.operators.pii import PIIDeidentifyOperator

    frame, ref = dataset
    source = Path(ref["uri"].removeprefix("file://"))
    ti = FakeTaskInstance("manual__pii_pass", "pii_test")
    operator = PIIDeidentifyOperator(task_id="deidentify", dataset=ref, label_column=LABEL)
    with caplog.at_level(logging.DEBUG):
        returned = operator.execute({"ti": ti})
    out = returned["dataset"]
    assert out["uri"] == _target(ti.run_id).as_uri()
    assert sha256_bytes(_target(ti.run_id).read_bytes()) == out["sha256"]
    assert sha256_bytes(source.read_bytes()) == ref["sha256"]  # the input is unchanged
    assert returned["gate"]["verdict"] == "pass"
    assert returned["gate"]["subjects"]["output"] == f"sha256:{out['sha256']}"

    written, _ = read_table(out["uri"], out["sha256"])
    assert written[LABEL].equals(frame[LABEL]) and written["age"].equals(frame["age"])
    assert not set(CANARIES.values()) & set(written.astype(str).to_numpy().ravel())
    assert "Quillfeather" not in written["notes"][0]

    evidence = Path(returned["gate"]["evidence_uri"].removeprefix("file://")).read_text()
    exposed = caplog.text + json.dumps([returned, ti.xcom]) + evidence
    planted = [*CANARIES.values(), "Quillfeather"]
    planted += [v for _, values in pii_truth(frame).values() for v in values]
    assert not [value for value in planted if value in exposed]

    lineage = LineageRecorder(Settings.from_env())
    run = lineage.client.get_run(lineage.run_for(RunKey("pii_test", ti.run_id)))
    assert run.data.tags["mlsecops.gate.pii_deidentification"] == "pass"
    contexts = {tag.key: tag.value for item in run.inputs.dataset_inputs for tag in item.tags}
    assert contexts.get("mlsecops.sha256") == out["sha256"]
    assert contexts.get("mlflow.data.context") == "deidentified"


def test_pseudonymisation_key_from_an_airflow_connection(
    dataset: tuple[Any, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from mlsecops_provider.operators.pii import PIIDeidentifyOperator

    frame, ref = dataset
    policy = _policy(tmp_path, "    default_operator: pseudonymize\n    key_conn_id: pii_key\n")
    operator = PIIDeidentifyOperator(task_id="deidentify", dataset=ref, policy_path=policy)
    with pytest.raises(AirflowFailException, match="ConfigError: .*'pii_key'.* not defined"):
        operator.execute({"ti": FakeTaskInstance("manual__pii_nokey", "pii_test")})
    assert not _target("manual__pii_nokey").exists()

    secret = json.dumps({"conn_type": "generic", "password": "s3cret-key-0123456789"})
    monkeypatch.setenv("AIRFLOW_CONN_PII_KEY", secret)
    returned = operator.execute({"ti": FakeTaskInstance("manual__pii_key", "pii_test")})
    written, _ = read_table(returned["dataset"]["uri"])
    assert written["email"].str.fullmatch(r"<EMAIL_ADDRESS_[0-9a-f]{16}>").all()
    assert written["email"].nunique() == frame["email"].nunique()


def test_failed_gate_fails_the_task_and_writes_no_dataset(tmp_path: Path) -> None:
    import pandas as pd
    from airflow.sdk.exceptions import AirflowFailException

    from mlsecops_provider.operators.pii import PIIDeidentifyOperator

    score = [4111111111111111 if i == 77 else i for i in range(120)]  # one card, past the plan
    ref = write_table(pd.DataFrame({"score": score}), (tmp_path / "c.parquet").as_uri())
    policy = _policy(tmp_path, "    column_hit_share: 0.3\n")
    operator = PIIDeidentifyOperator(task_id="d", dataset=ref.to_dict(), policy_path=policy)
    with pytest.raises(AirflowFailException, match="gate pii_deidentification fail"):
        operator.execute({"ti": FakeTaskInstance("manual__pii_fail", "pii_test")})
    assert not _target("manual__pii_fail").exists()
