"""OpenLineage: the provider's extractor reads our operators' inputs and outputs with digests."""

from __future__ import annotations

from pathlib import Path

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.include.generator import generate
from mlsecops_provider.operators._lineage import namespace_and_name
from tests.operators.fakes import FakeTaskInstance


def test_ingest_reports_source_and_copy_with_their_digest(tmp_path: Path) -> None:
    from airflow.providers.openlineage.extractors.base import DefaultExtractor
    from airflow.providers.openlineage.extractors.manager import ExtractorManager

    from mlsecops_provider.operators.ingest import DatasetIngestOperator

    source = write_table(generate(50), (tmp_path / "batch.parquet").as_uri())
    operator = DatasetIngestOperator(task_id="ingest", source_uri=source.uri)
    ti = FakeTaskInstance("manual__openlineage")
    copy = operator.execute({"ti": ti})
    assert ExtractorManager().get_extractor_class(operator) is DefaultExtractor
    lineage = operator.get_openlineage_facets_on_complete(None)
    (inp,), (out,) = lineage.inputs, lineage.outputs
    assert (inp.namespace, inp.name) == ("file", str(tmp_path / "batch.parquet"))
    assert out.name == copy["uri"].removeprefix("file://")
    for dataset in (inp, out):
        assert dataset.facets["version"].datasetVersion == f"sha256:{source.sha256}"
        assert [f.name for f in dataset.facets["schema"].fields] == list(source.columns)


def test_s3_names_follow_the_openlineage_convention() -> None:
    assert namespace_and_name("s3://bucket/a/b.parquet") == ("s3://bucket", "a/b.parquet")
    assert namespace_and_name("file:///tmp/x.csv") == ("file", "/tmp/x.csv")
