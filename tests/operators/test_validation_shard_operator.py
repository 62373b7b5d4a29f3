"""Sharded validation in a DAG: split, mapped shard tasks, merge; run with ``dag.test()``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.include.generator import generate
from tests.operators.fakes import FakeTaskInstance


def _policy(tmp_path: Path) -> str:
    """The default thresholds, with PII chunks small enough for 1200 rows to make 3 shards."""
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\ngates:\n  pii_deidentification:\n    chunk_rows: 100\n")
    return str(path)


def _dag(
    dag_id: str,
    dataset: dict[str, Any],
    reference: dict[str, Any],
    count: int,
    policy: str,
    quarantine: bool = False,
) -> Any:
    from airflow.sdk import DAG

    from mlsecops_provider.operators.shards import DatasetShardOperator
    from mlsecops_provider.operators.validation_merge import DataValidationMergeOperator
    from mlsecops_provider.operators.validation_shard import DataValidationShardOperator

    with DAG(dag_id, schedule=None, catchup=False) as dag:
        split = DatasetShardOperator(
            task_id="split", dataset=dataset, shard_count=count, policy_path=policy
        )
        shards = DataValidationShardOperator.partial(
            task_id="validate_shard",
            reference=reference,
            label_column="default",
            policy_path=policy,
            quarantine=quarantine,
        ).expand(shard=split.output)
        DataValidationMergeOperator(
            task_id="merge", parts=shards.output, label_column="default", policy_path=policy
        )
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


def _xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    query = XComModel.get_many(
        run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key=key
    )
    with create_session() as session:
        values = [XComModel.deserialize_value(row) for row in session.scalars(query)]
    assert len(values) == 1, f"{task_id}/{key}: {len(values)} values"
    return values[0]


@pytest.mark.slow
def test_mapped_shards_merge_to_the_single_task_verdict(airflow_db: Path, tmp_path: Path) -> None:
    from mlsecops_provider.operators.validation import DataValidationOperator

    reference = write_table(generate(1000, seed=7), (tmp_path / "ref.parquet").as_uri())
    data = write_table(generate(1200, seed=11), (tmp_path / "cur.parquet").as_uri())
    single = DataValidationOperator(
        task_id="validate", dataset=data.to_dict(), reference=reference.to_dict(),
        label_column="default", policy_path=_policy(tmp_path),
    ).execute({"ti": FakeTaskInstance("manual__single")})  # fmt: skip
    run = _dag(
        "sharded_validation_3", data.to_dict(), reference.to_dict(), 3, _policy(tmp_path)
    ).test()
    assert run.state == "success"
    verdict = _xcom(run, "merge", "verdict")
    assert verdict == single["verdict"]
    assert _xcom(run, "merge", "message") == single["message"]
    kept = _xcom(run, "merge", "shards")
    assert [k["index"] for k in kept] == [0, 1, 2] and sum(k["rows"] for k in kept) == 1200
    assert _xcom(run, "merge", "subjects")["data"] == f"sha256:{data.sha256}"
    report = json.loads(
        Path(_xcom(run, "merge", "evidence_uri").removeprefix("file://")).read_text()
    )
    assert report["result"]["metrics"]["shards"] == 3
    assert Path(_xcom(run, "merge", "data_docs_uri").removeprefix("file://")).exists()


@pytest.mark.slow
def test_one_shard_gives_the_dataset_and_rerun_is_idempotent(
    airflow_db: Path, tmp_path: Path
) -> None:
    from mlsecops_provider.core.shards.split import split_dataset
    from mlsecops_provider.operators.validation_shard import DataValidationShardOperator

    reference = write_table(generate(800, seed=7), (tmp_path / "ref.parquet").as_uri())
    data = write_table(generate(800, seed=12), (tmp_path / "cur.parquet").as_uri())
    run = _dag(
        "sharded_validation_1", data.to_dict(), reference.to_dict(), 1, _policy(tmp_path)
    ).test()
    assert run.state == "success"
    assert _xcom(run, "merge", "dataset")["sha256"] == data.sha256
    shard = split_dataset(data.uri, data.sha256, (tmp_path / "s").as_uri(), shard_count=3)[1]
    task = DataValidationShardOperator(task_id="v", shard=shard.to_dict(), reference=reference.uri)
    ti = FakeTaskInstance("manual__rerun")
    first, second = task.execute({"ti": ti}), task.execute({"ti": ti})
    assert first == second  # same partial bytes, same digest


@pytest.mark.slow
def test_quarantine_over_shards_returns_the_kept_rows_in_order(
    airflow_db: Path, tmp_path: Path
) -> None:
    import pandas as pd

    from mlsecops_provider.core.shards.split import ShardRef, check_cover
    from mlsecops_provider.operators.validation import DataValidationOperator

    policy = _policy(tmp_path)
    reference = write_table(generate(1000, seed=7), (tmp_path / "ref.parquet").as_uri())
    data = write_table(
        generate(1200, seed=13, outlier_rate=0.004), (tmp_path / "q.parquet").as_uri()
    )
    single = DataValidationOperator(
        task_id="validate", dataset=data.to_dict(), reference=reference.to_dict(),
        label_column="default", policy_path=policy, quarantine=True,
    ).execute({"ti": FakeTaskInstance("manual__single_quarantine")})  # fmt: skip
    run = _dag("sharded_quarantine", data.to_dict(), reference.to_dict(), 3, policy, True).test()
    assert run.state == "success"
    assert _xcom(run, "merge", "verdict") == single["verdict"]
    kept = check_cover([ShardRef.from_dict(k) for k in _xcom(run, "merge", "shards")])
    frames = [pd.read_parquet(k.uri.removeprefix("file://")) for k in kept]
    expected = pd.read_parquet(single["dataset"]["uri"].removeprefix("file://"))
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), expected)
    assert sum(k.rows for k in kept) < 1200
