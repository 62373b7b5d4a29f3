"""Every example DAG imports cleanly, carries tags and retries, and uses our operators."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert "secure_training" in dagbag.dag_ids


def test_tags_retries_and_owner(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert not dag.catchup, f"{dag_id} must not catch up"
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


def test_secure_training_uses_the_provider_operators(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["secure_training"]
    modules = {type(t).__module__ for t in dag.tasks}
    assert all(m.startswith("mlsecops_provider.operators.") for m in modules)
    assert dag.max_active_runs == 1
    order = [t.task_id for t in dag.topological_sort()]
    chain = ["ingest", "validate_data", "train", "provenance"]
    assert [order.index(t) for t in chain] == sorted(order.index(t) for t in chain)
