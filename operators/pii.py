"""PIIDeidentifyOperator: write a de-identified copy of a dataset and verify it (Presidio)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from mlsecops_provider.core.data.datasets import DatasetRef, dataset_from_xcom
from mlsecops_provider.core.errors import ConfigError
from mlsecops_provider.core.evidence import GateResult
from mlsecops_provider.core.pii.chunks import ChunkSink, ChunkSource, open_source
from mlsecops_provider.core.pii.gate import GATE, Deidentifier, Outcome, PIIConfig, resolve_key
from mlsecops_provider.core.pii.stream import run_stream
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import normalise_uri
from mlsecops_provider.core.tracking.lineage import LineageRecorder
from mlsecops_provider.operators._lineage import operator_lineage
from mlsecops_provider.operators._runtime import (
    bad_input_fails_task,
    run_key,
)
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


class PIIDeidentifyOperator(MLSecOpsOperator):
    """De-identify PII into a new dataset; the input is never changed.

    Structured PII columns are detected from a random sample and transformed whole; free
    text value by value. Every cell of the output is scanned again: residual PII above the
    policy's ``max_residual_rate`` (default 0) fails the gate ``pii_deidentification`` and
    nothing is written. The output has the input's format, rows and order; columns not
    transformed are as they were (CSV text as read, Parquet types). The report (evidence
    store) holds counts, entity types and strategies, never values.

    :param dataset: a dataset reference from upstream (``{uri, sha256, ...}``, verified on
        read) or a URI. Templated.
    :param label_column: passed through untouched and unscanned (added to exclude_columns).
    :param key_conn_id: Airflow connection whose password is the pseudonymisation key
        (default: the policy's ``key_conn_id``). Templated.
    :param key_env: environment variable holding the key, when no connection is named
        (default: the policy's ``key_env``).
    :param chunk_rows: rows per chunk (default: the policy's ``chunk_rows``, 50,000): the
        input is read, de-identified, verified and written chunk by chunk, so memory stays
        bounded; the output is published only after every chunk was verified.
    :return: ``{"dataset": <DatasetRef of the output>, "gate": <GateResult summary>}``, also
        pushed as the XComs ``dataset`` and ``gate`` (``multiple_outputs``), so that a
        consumer takes ``deidentify.output["dataset"]``.
    """

    template_fields: Sequence[str] = fields("dataset", "key_conn_id")
    ui_color = "#f3e8fb"

    def __init__(
        self,
        *,
        dataset: Any,
        label_column: str | None = None,
        key_conn_id: str | None = None,
        key_env: str | None = None,
        chunk_rows: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)  # downstream: task.output["dataset"]
        super().__init__(**kwargs)
        self.dataset = dataset
        self.label_column = label_column
        self.key_conn_id = key_conn_id
        self.key_env = key_env
        self.chunk_rows = chunk_rows

    def execute(self, context: Any) -> dict[str, Any]:
        with bad_input_fails_task():
            return self._deidentify(context)

    def _deidentify(self, context: Any) -> dict[str, Any]:
        settings = Settings.from_env()
        config = PIIConfig.from_policy(self.load_policy())
        if self.label_column:
            config = replace(config, exclude_columns=(*config.exclude_columns, self.label_column))
        if self.chunk_rows is not None:
            config = replace(config, chunk_rows=self.chunk_rows)
        deidentifier = Deidentifier.prepare(config, self._key(config))
        factory = self.s3_factory
        uri, expected = self._source()
        key = run_key(context)
        with open_source(uri, expected, factory, config.chunk_rows) as source:
            self.log.info("Verified %s (sha256 %s)", source.uri, source.sha256)
            name = f"deidentified.{source.format}"  # the input's format: columns as they were
            target = settings.run_artifact_uri(key.dag_id, key.run_id, "data", name)
            result, outcome, ref, output = self._stream(deidentifier, source, target)
        if output is not None:
            lineage = LineageRecorder(settings)
            lineage.log_dataset(
                lineage.run_for(key),
                outcome.frame,
                output,
                name="deidentified",
                context="deidentified",
                targets=self.label_column,
            )
            self.log.info("Wrote %s (sha256 %s)", output.uri, output.sha256)
        summary = self.record_gate(context, result, outcome.details, settings=settings)
        self._lineage = ([ref], [output] if output else [])
        return {"dataset": output.to_dict() if output else None, "gate": summary}

    def _stream(
        self, deidentifier: Deidentifier, source: ChunkSource, target: str
    ) -> tuple[GateResult, Outcome, DatasetRef, DatasetRef | None]:
        """Chunk by chunk into a temporary file, published only if the gate does not block."""
        output: DatasetRef | None = None
        with ChunkSink(target, source.format, self.s3_factory) as sink:  # CSV text, Parquet arrow
            streamed = run_stream(deidentifier, source, sink, {"input": f"sha256:{source.sha256}"})
            outcome = streamed.outcome
            result = replace(
                outcome.result,
                subjects={**outcome.result.subjects, "output": f"sha256:{sink.sha256}"},
            )
            if not result.verdict.blocks:  # a failed gate publishes no dataset
                sink.publish()
                output = DatasetRef(
                    target, str(sink.sha256), sink.rows, sink.columns, source.format
                )
        ref = DatasetRef(
            source.uri, source.sha256, streamed.rows, streamed.input_columns, source.format
        )
        return result, outcome, ref, output

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs and outputs with their digests, for Airflow's OpenLineage provider."""
        return operator_lineage(*getattr(self, "_lineage", ((), ())))

    def _source(self) -> tuple[str, str | None]:
        if isinstance(self.dataset, dict):
            ref = dataset_from_xcom(self.dataset)
            return ref.uri, ref.sha256
        if isinstance(self.dataset, str) and self.dataset:
            return normalise_uri(self.dataset), None
        raise ConfigError(f"{GATE}: dataset must be a dataset reference or a URI")

    def _key(self, config: PIIConfig) -> bytes | None:
        """The pseudonymisation key: an Airflow connection's password, else an env var."""
        conn_id = self.key_conn_id or config.key_conn_id
        if not config.needs_key or not conn_id:
            return resolve_key(config, self.key_env)
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            password = BaseHook.get_connection(conn_id).password
        except AirflowNotFoundException as err:
            raise ConfigError(f"Airflow connection {conn_id!r} (PII key) is not defined") from err
        if not password:
            raise ConfigError(f"Airflow connection {conn_id!r} has no password (the PII key)")
        return str(password).encode()
