"""Attack: a partial of another input or of another run is slipped into the merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.validation.sharded_merge import merge_partials
from tests.security._sharded_validation import CONFIG, RUN, SUITE, partials


def test_partial_of_another_input_or_run_does_not_pass(tmp_path: Path) -> None:
    """A shard validated on other data, or in another DAG run, never yields a pass."""
    mine = partials(tmp_path, seed=11)
    assert merge_partials(mine, SUITE, CONFIG, run=RUN)[0].verdict is Verdict.PASS
    other_input = partials(tmp_path, seed=12)
    mixed = [mine[0], other_input[1], mine[2]]
    result, _ = merge_partials(mixed, SUITE, CONFIG, run=RUN)
    assert result.verdict is Verdict.ERROR and "different inputs" in result.message
    other_run = partials(tmp_path, seed=11, run={"dag_id": "d", "run_id": "r0"})
    result, _ = merge_partials([mine[0], other_run[1], mine[2]], SUITE, CONFIG, run=RUN)
    assert result.verdict is Verdict.ERROR and "another run" in result.message


def test_merge_task_refuses_a_partial_stored_by_another_run(tmp_path: Path) -> None:
    """A map result pointing at another DAG run's partial is an error verdict, not a pass."""
    from airflow.sdk.exceptions import AirflowFailException

    from mlsecops_provider.core.data.datasets import write_table
    from mlsecops_provider.core.shards.split import split_dataset
    from mlsecops_provider.include.generator import generate
    from mlsecops_provider.operators.validation_merge import DataValidationMergeOperator
    from mlsecops_provider.operators.validation_shard import DataValidationShardOperator
    from tests.operators.fakes import FakeTaskInstance

    data = write_table(generate(600, seed=21), (tmp_path / "in.parquet").as_uri())
    shards = split_dataset(data.uri, data.sha256, (tmp_path / "s").as_uri(), shard_count=2)
    suite = str(tmp_path / "suite.json")
    expectation = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age"}}
    Path(suite).write_text(json.dumps({"name": "s", "expectations": [expectation]}))
    old, new = FakeTaskInstance("manual__old"), FakeTaskInstance("manual__new")
    outputs = [
        DataValidationShardOperator(task_id="v", shard=s.to_dict(), suite=suite).execute(
            {"ti": old if s.index == 0 else new}
        )
        for s in shards
    ]
    merge = DataValidationMergeOperator(task_id="m", parts=outputs, suite=suite)
    with pytest.raises(AirflowFailException, match="gate data_validation error"):
        merge.execute({"ti": new})
    report = Path(new.xcom["_link_EvidenceLink"].removeprefix("file://")).read_text()
    assert "not in this run's evidence folder" in report
