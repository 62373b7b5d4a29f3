"""OpenLineage for the operators that read and write datasets, when the provider is installed.

Airflow's OpenLineage provider calls ``get_openlineage_facets_on_complete`` on an operator
after it ran; the operators that move datasets keep what they read and wrote and answer with
:func:`operator_lineage`: each dataset with its SHA-256 as the dataset version, and its
columns as the schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from mlsecops_provider.core.data.datasets import DatasetRef


def namespace_and_name(uri: str) -> tuple[str, str]:
    """OpenLineage naming: ``s3://bucket`` + key, ``file`` + absolute path."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        return f"s3://{parsed.netloc}", parsed.path.lstrip("/")
    return parsed.scheme or "file", parsed.path


def _dataset(ref: DatasetRef) -> Any:
    from openlineage.client.event_v2 import Dataset
    from openlineage.client.facet_v2 import dataset_version_dataset, schema_dataset

    namespace, name = namespace_and_name(ref.uri)
    fields = [schema_dataset.SchemaDatasetFacetFields(name=column) for column in ref.columns]
    facets = {
        "version": dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=f"sha256:{ref.sha256}"
        ),
        "schema": schema_dataset.SchemaDatasetFacet(fields=fields),
    }
    return Dataset(namespace=namespace, name=name, facets=facets)


def operator_lineage(inputs: Sequence[DatasetRef], outputs: Sequence[DatasetRef]) -> Any:
    """An ``OperatorLineage``; None when the OpenLineage provider is not installed."""
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    return OperatorLineage(
        inputs=[_dataset(ref) for ref in inputs], outputs=[_dataset(ref) for ref in outputs]
    )
