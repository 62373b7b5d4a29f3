"""End to end: secure_training with dag.test() on SQLite, MLflow on SQLite, local stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.lineage import LineageRecorder, RunKey
from mlsecops_provider.core.tracking.registry import alias_version
from mlsecops_provider.include.generator import generate

pytestmark = pytest.mark.slow


def _run(source_uri: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags")).get_dag(
        "secure_training"
    )
    return dag.test(run_conf={"source_uri": source_uri})


def _xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    query = XComModel.get_many(
        run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key=key
    )
    with create_session() as session:
        row = session.scalars(query).first()
        return XComModel.deserialize_value(row)


def _states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


@pytest.fixture(scope="module")
def two_runs(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from mlsecops_provider.core.promotion.signing import ensure_demo_keys

    ensure_demo_keys(Settings.from_env().home)
    folder = tmp_path_factory.mktemp("incoming")
    first = write_table(generate(800, seed=7), (folder / "b1.parquet").as_uri())
    second = write_table(generate(800, seed=11), (folder / "b2.parquet").as_uri())
    return {"refs": (first, second), "runs": (_run(first.uri), _run(second.uri))}


def test_runs_succeed(two_runs: dict[str, Any]) -> None:
    for dag_run in two_runs["runs"]:
        assert str(dag_run.state) == "success", _states(dag_run)


def test_mlflow_run_carries_datasets_with_digests(two_runs: dict[str, Any]) -> None:
    lineage = LineageRecorder(Settings.from_env())
    ref = two_runs["refs"][0]
    run_id = lineage.run_for(RunKey("secure_training", two_runs["runs"][0].run_id))
    run = lineage.client.get_run(run_id)
    inputs = run.inputs.dataset_inputs
    digests = {
        {t.key: t.value for t in i.tags}["mlflow.data.context"]: {t.key: t.value for t in i.tags}[
            "mlsecops.sha256"
        ]
        for i in inputs
    }
    assert digests["raw"] == ref.sha256  # ingest copies the bytes unchanged
    deidentified = _xcom(two_runs["runs"][0], "deidentify_pii", "dataset")
    assert digests["training"] == deidentified["sha256"]  # the model never sees raw PII
    assert run.data.tags["mlsecops.gate.data_validation"] in ("pass", "warn")
    assert run.data.tags["mlsecops.gate.pii_deidentification"] == "pass"
    assert run.data.tags["mlsecops.dag_id"] == "secure_training"
    assert 0.5 < run.data.metrics["train.roc_auc"] <= 1.0


def test_second_version_is_promoted_with_a_verifiable_signed_record(
    two_runs: dict[str, Any],
) -> None:
    from mlsecops_provider.core.promotion.verify import verify_promotion

    settings = Settings.from_env()
    lineage = LineageRecorder(settings)
    versions = lineage.client.search_model_versions("name = 'mlsecops-demo'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    assert alias_version(lineage.client, "mlsecops-demo", "champion") == "2"
    assert alias_version(lineage.client, "mlsecops-demo", "previous-champion") == "1"
    by_version = {str(v.version): v for v in versions}
    deidentified = _xcom(two_runs["runs"][0], "deidentify_pii", "dataset")
    assert by_version["1"].tags["mlsecops.dataset_sha256"] == deidentified["sha256"]
    public_key = (settings.home / "keys" / "promotion.pub.pem").read_bytes()
    assert verify_promotion("mlsecops-demo", "champion", public_key).verified


def test_missing_source_fails_ingest_without_retry_and_writes_nothing(
    two_runs: dict[str, Any], tmp_path: Path
) -> None:
    settings = Settings.from_env()
    before = sorted(Path(settings.artifact_uri.removeprefix("file://")).rglob("*"))
    dag_run = _run((tmp_path / "absent.parquet").as_uri())
    states = _states(dag_run)
    assert str(dag_run.state) == "failed"
    assert states["ingest"] == "failed" and states["promote"] == "upstream_failed"
    ingest = next(t for t in dag_run.get_task_instances() if t.task_id == "ingest")
    assert ingest.try_number == 1  # bad input is not retried
    after = sorted(Path(settings.artifact_uri.removeprefix("file://")).rglob("*"))
    assert after == before


def test_provenance_statement_matches_the_model(two_runs: dict[str, Any], tmp_path: Path) -> None:
    import json

    from mlsecops_provider.core.hashing import model_signing_root_digest
    from mlsecops_provider.core.provenance.slsa import validate_statement
    from mlsecops_provider.core.tracking.registry import download_model

    settings = Settings.from_env()
    lineage = LineageRecorder(settings)
    version = lineage.client.get_model_version("mlsecops-demo", "1")
    model_dir = download_model(settings, version.source, str(tmp_path))
    digest = model_signing_root_digest(model_dir)
    assert version.tags["mlsecops.model_sha256"] == digest
    statement_path = Path(version.tags["mlsecops.provenance_uri"].removeprefix("file://"))
    statement = json.loads(statement_path.read_text())
    validate_statement(statement)
    assert statement["subject"][0]["digest"]["sha256"] == digest
    deps = {d["name"]: d for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert deps["dataset:raw"]["digest"]["sha256"] == two_runs["refs"][0].sha256
    assert {"code", "environment"} <= set(deps)
    run_id = lineage.run_for(RunKey("secure_training", two_runs["runs"][0].run_id))
    tags = lineage.client.get_run(run_id).data.tags
    assert tags["mlsecops.gate.provenance"] == "pass"
    assert tags["mlsecops.gate.dependency_audit"] == "pass"
    byproducts = {b["name"] for b in statement["predicate"]["runDetails"]["byproducts"]}
    assert "gate:dependency_audit" in byproducts
