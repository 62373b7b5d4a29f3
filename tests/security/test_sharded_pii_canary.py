"""Attack: raw PII leaking through the sharded path's plan, XComs, partials or evidence."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from mlsecops_provider.core.data.datasets import read_table, write_table
from mlsecops_provider.core.settings import Settings, mlsecops_home
from mlsecops_provider.core.shards.split import split_dataset
from mlsecops_provider.include.generator import LABEL, generate
from tests.operators.fakes import FakeTaskInstance

CANARIES = {
    "full_name": "Ottoline Pemberwick",
    "email": "ottoline.pemberwick@example.net",
    "phone": "(312) 555-0147",
    "ssn": "536-22-8841",
    "card_number": "4012888888881881",
    "iban": "FR1420041010050500013M02606",
    "ip_address": "192.0.2.146",
}
# The surname only in the note of the last shard: the deny list must cross shards.
LATE_NOTE = "Follow-up call: pemberwick asked again about the refund of the fee."
PLANTED = [*CANARIES.values(), "Pemberwick", "pemberwick", "Ottoline", "555-0147"]


def _text(root: Path) -> str:
    """Every file under ``root`` but the datasets, decoded loosely (SQLite pages too)."""
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace")
        for p in root.rglob("*")
        if p.is_file() and p.suffix not in (".parquet", ".csv")
    )


def test_canaries_reach_no_plan_xcom_partial_log_or_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Plants known PII in shard 1 (and the surname alone in shard 3's free text), runs
    plan, 3 shard tasks and the merge, then greps the plan file, every partial, every
    XCom value, the task logs, the evidence store and MLflow, and the merged output."""
    from mlsecops_provider.core.tracking.lineage import LineageRecorder, RunKey
    from mlsecops_provider.operators.pii_merge import PIIMergeOperator
    from mlsecops_provider.operators.pii_plan import PIIPlanOperator
    from mlsecops_provider.operators.pii_shard import PIIDeidentifyShardOperator

    monkeypatch.setenv("MLSECOPS_PII_KEY", "canary-sharded-key-0123456789abcdef")
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\ngates:\n  pii_deidentification:\n    chunk_rows: 50\n"
                      "    key_env: MLSECOPS_PII_KEY\n")  # fmt: skip
    frame = generate(150, seed=41)
    for column, value in CANARIES.items():
        frame.loc[0, column] = value
    frame.loc[140, "notes"] = LATE_NOTE
    ref = write_table(frame, (tmp_path / "raw.parquet").as_uri())
    shards = [s.to_dict() for s in split_dataset(ref.uri, ref.sha256,
              (tmp_path / "shards").as_uri(), shard_count=3, align=50)]  # fmt: skip
    ti = FakeTaskInstance("manual__sharded_canary", "pii_sharded_canary")
    common = {"label_column": LABEL, "policy_path": str(policy)}
    with caplog.at_level(logging.DEBUG):
        plan = PIIPlanOperator(task_id="plan", shards=shards, **common).execute({"ti": ti})
        parts = [
            PIIDeidentifyShardOperator(task_id="shard", shard=s, plan=plan, **common).execute(
                {"ti": ti}
            )
            for s in shards
        ]
        merged = PIIMergeOperator(task_id="merge", parts=parts, **common).execute({"ti": ti})
    assert merged["gate"]["verdict"] in ("pass", "warn"), merged["gate"]
    area = Path(Settings.from_env().run_artifact_uri(ti.dag_id, ti.run_id).removeprefix("file://"))
    plan_text = (area / "pii" / "plan.json").read_text()
    assert json.loads(plan_text)["deny"]["words"]  # the deny list is there, as digests

    lineage = LineageRecorder(Settings.from_env())
    run = lineage.client.get_run(lineage.run_for(RunKey(ti.dag_id, ti.run_id)))
    written, _ = read_table(merged["dataset"]["uri"], merged["dataset"]["sha256"])
    assert len(written) == 150 and written[LABEL].equals(frame[LABEL])
    exposed = {
        "plan": plan_text,
        "partials": _text(area / "pii" / "partials"),
        "xcom": json.dumps([plan, parts, merged, ti.xcom], default=str),
        "logs": caplog.text + "".join(capsys.readouterr()),
        "mlflow": json.dumps([run.data.params, run.data.tags, run.data.metrics]),
        "evidence": _text(mlsecops_home()),
        "output": written.astype(str).to_csv(index=False),
    }
    leaks = {where: [v for v in PLANTED if v in text] for where, text in exposed.items()}
    assert leaks == {where: [] for where in exposed}
