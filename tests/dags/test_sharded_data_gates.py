"""sharded_data_gates under dag.test(): mapped shard tasks, merged verdicts, single-task bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.storage import sha256_bytes
from mlsecops_provider.include.generator import LABEL, generate
from tests.dags.test_secure_training import _states, _xcom
from tests.operators.fakes import FakeTaskInstance

pytestmark = pytest.mark.slow
POLICY = """version: 1
gates:
  pii_deidentification:
    chunk_rows: 100
    seed: 5
    key_env: MLSECOPS_PII_KEY
"""


def _run(source_uri: str, shard_rows: int) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags")).get_dag(
        "sharded_data_gates"
    )
    return dag.test(run_conf={"source_uri": source_uri, "shard_rows": shard_rows})


@pytest.fixture(scope="module")
def sharded(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("sharded")
    policy = work / "policy.yaml"
    policy.write_text(POLICY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLSECOPS_POLICY", str(policy))  # read when the DAG file is parsed
        patch.setenv("MLSECOPS_PII_KEY", "sharded-test-key-0123456789abcdef")  # keys the deny list
        ref = write_table(generate(520, seed=17), (work / "batch.parquet").as_uri())
        run = _run(ref.uri, 150)  # rounded up to two PII chunks of 100: shards of 200
        from mlsecops_provider.operators.pii import PIIDeidentifyOperator

        single = PIIDeidentifyOperator(
            task_id="single", dataset=ref.to_dict(), label_column=LABEL, policy_path=str(policy)
        ).execute({"ti": FakeTaskInstance("manual__single", "sharded_single")})
    return {"ref": ref, "run": run, "single": single}


def test_the_run_succeeds_with_one_mapped_task_per_shard(sharded: dict[str, Any]) -> None:
    run = sharded["run"]
    assert str(run.state) == "success", _states(run)
    shards = _xcom(run, "split_dataset")
    assert [s["rows"] for s in shards] == [200, 200, 120]
    mapped = [ti for ti in run.get_task_instances() if ti.map_index >= 0]
    assert sorted((ti.task_id, ti.map_index) for ti in mapped) == [
        (task, i) for task in ("deidentify_shard", "validate_shard") for i in range(3)
    ]


def test_the_merged_gates_name_the_input_and_pass(sharded: dict[str, Any]) -> None:
    run, ref = sharded["run"], sharded["ref"]
    validation = _xcom(run, "validate_data")
    assert validation["verdict"] in ("pass", "warn")
    assert validation["subjects"]["data"] == f"sha256:{ref.sha256}"
    pii = _xcom(run, "deidentify_pii", "gate")
    assert pii["verdict"] == "pass", pii
    assert f"sha256:{ref.sha256}" in pii["subjects"].values(), pii["subjects"]


def test_sharded_pii_output_is_byte_identical_to_the_single_task(sharded: dict[str, Any]) -> None:
    merged = _xcom(sharded["run"], "deidentify_pii", "dataset")
    single = sharded["single"]["dataset"]
    assert merged["sha256"] == single["sha256"]
    merged_bytes = Path(merged["uri"].removeprefix("file://")).read_bytes()
    assert sha256_bytes(merged_bytes) == merged["sha256"]
