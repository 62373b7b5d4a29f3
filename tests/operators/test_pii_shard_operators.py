"""Sharded de-identification operators in a DAG (dag.test, mapped shard tasks): the merge
returns what PIIDeidentifyOperator returns, with the same output bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import sha256_bytes
from tests.core.pii.test_sharded import CHUNK, write_input
from tests.operators.fakes import FakeTaskInstance

KEY = "operator-sharded-key-0123456789abcdef"
SHARDS = 3


def _policy(tmp_path: Path) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "version: 1\ngates:\n  pii_deidentification:\n    seed: 5\n"
        f"    chunk_rows: {CHUNK}\n    key_env: MLSECOPS_PII_KEY\n"
    )
    return str(path)


def _dag(dag_id: str, source: Path, policy: str, prefix: str) -> Any:
    import pendulum
    from airflow.sdk import DAG, task

    from mlsecops_provider.operators.pii_merge import PIIMergeOperator
    from mlsecops_provider.operators.pii_plan import PIIPlanOperator
    from mlsecops_provider.operators.pii_shard import PIIDeidentifyShardOperator

    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:

        @task
        def split() -> list[dict[str, Any]]:
            from mlsecops_provider.core.shards.split import split_dataset

            shards = split_dataset(source.as_uri(), None, prefix, shard_count=SHARDS, align=CHUNK)
            return [s.to_dict() for s in shards]

        shards = split()
        plan = PIIPlanOperator(task_id="plan", shards=shards, policy_path=policy)
        done = PIIDeidentifyShardOperator.partial(
            task_id="shard", plan=plan.output, policy_path=policy
        ).expand(shard=shards)
        PIIMergeOperator(task_id="merge", parts=done.output, policy_path=policy)
    _register(dag)
    return dag


def _register(dag: Any) -> None:
    """Serialise a DAG built in the test into the metadata DB (dag.test needs a version)."""
    import tempfile

    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=tempfile.mkdtemp(prefix="empty-dags-"))
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def _xcom(dag_run: Any, task_id: str, key: str = "return_value") -> list[Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    query = XComModel.get_many(
        run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key=key
    )
    with create_session() as session:
        return [XComModel.deserialize_value(row) for row in session.scalars(query)]


def _states(dag_run: Any) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for ti in dag_run.get_task_instances():
        states.setdefault(ti.task_id, []).append(str(ti.state))
    return states


@pytest.fixture()
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSECOPS_PII_KEY", KEY)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_mapped_shards_merge_into_the_single_operators_bytes(
    airflow_db: Path, keyed: None, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """split -> plan -> 3 mapped shard tasks -> merge: success, the same return shape and
    output bytes as PIIDeidentifyOperator, one gate; a re-run shard keeps its digests."""
    from mlsecops_provider.operators.pii import PIIDeidentifyOperator
    from mlsecops_provider.operators.pii_shard import PIIDeidentifyShardOperator

    source = write_input(tmp_path, fmt)
    policy = _policy(tmp_path)
    dag = _dag(f"pii_sharded_{fmt}", source, policy, (tmp_path / "shards").as_uri())
    run = dag.test()
    states = _states(run)
    assert states["merge"] == ["success"] and states["shard"] == ["success"] * SHARDS, states
    dataset = _xcom(run, "merge", "dataset")[0]
    gate = _xcom(run, "merge", "gate")[0]
    assert gate["verdict"] == "pass" and gate["subjects"]["output"] == f"sha256:{dataset['sha256']}"
    merged = Path(dataset["uri"].removeprefix("file://")).read_bytes()
    assert sha256_bytes(merged) == dataset["sha256"]

    ti = FakeTaskInstance(f"manual__single_{fmt}", "pii_single")
    single = PIIDeidentifyOperator(task_id="single", dataset=source.as_uri(), policy_path=policy)
    returned = single.execute({"ti": ti})
    assert set(returned) == {"dataset", "gate"} and set(returned["dataset"]) == set(dataset)
    assert Path(returned["dataset"]["uri"].removeprefix("file://")).read_bytes() == merged
    assert returned["gate"]["subjects"]["output"] == gate["subjects"]["output"]
    assert returned["gate"]["subjects"]["input"] == gate["subjects"]["input"]

    parts = sorted(_xcom(run, "shard"), key=lambda p: p["shard"]["index"])
    plan = _xcom(run, "plan")[0]
    again = PIIDeidentifyShardOperator(task_id="shard", shard=parts[1]["shard"], plan=plan,
                                       policy_path=policy)  # fmt: skip
    capsys.readouterr()
    redone = again.execute({"ti": FakeTaskInstance(run.run_id, run.dag_id)})
    assert redone == parts[1]
    logged = "".join(capsys.readouterr())
    assert f"shard 2/{SHARDS}: 30 rows, 0 residual" in logged and "already done" in logged


def test_a_shard_with_residual_pii_fails_the_merge_and_publishes_nothing(
    airflow_db: Path, keyed: None, tmp_path: Path
) -> None:
    """An SSN planted in a clean column of shard 2: that shard writes nothing, the merge's
    gate fails, no merged dataset exists."""
    source = write_input(tmp_path, "csv", residual_at=44)
    dag = _dag("pii_sharded_residual", source, _policy(tmp_path), (tmp_path / "s").as_uri())
    run = dag.test()
    states = _states(run)
    assert states["shard"] == ["success"] * SHARDS and states["merge"] == ["failed"], states
    gate = _xcom(run, "merge", "mlsecops_gate")[0]
    assert gate["verdict"] == "fail"
    area = Settings.from_env().run_artifact_uri(run.dag_id, run.run_id, "data")
    data = Path(area.removeprefix("file://"))
    assert not (data / "deidentified.csv").exists()
    assert sorted(p.name for p in (data / "deidentified-shards").iterdir()) == [
        "shard-00000-of-00003.csv",
        "shard-00002-of-00003.csv",
    ]
