"""DataValidationOperator: Great Expectations suite plus data-poisoning screens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from mlsecops_provider.core.data.datasets import (
    DatasetRef,
    dataset_from_xcom,
    read_table,
    write_table,
)
from mlsecops_provider.core.evidence import EvidenceStore
from mlsecops_provider.core.settings import Settings, packaged_file
from mlsecops_provider.core.storage import normalise_uri
from mlsecops_provider.core.validation.gate import GATE, ValidationConfig, validate_dataset
from mlsecops_provider.core.validation.poisoning import screen_dataset
from mlsecops_provider.core.validation.suite import load_suite
from mlsecops_provider.operators._lineage import operator_lineage
from mlsecops_provider.operators._runtime import (
    run_key,
)
from mlsecops_provider.operators.base import MLSecOpsOperator, fields

DRIFT_SCREENS = ("drift", "label_shift")  # what a drifted batch shows without being poisoned
DEFAULT_SUITE = str(packaged_file("suites", "credit_risk.json"))


class DataValidationOperator(MLSecOpsOperator):
    """Validate a dataset against a GX 1.x suite and screen it for poisoning.

    The screens compare the batch with a reference (drift per column, label shift, outliers,
    injected duplicates). With ``quarantine=True`` outlier rows move to a separate dataset, the
    suite validates the rows that remain, and the task's output dataset is those rows; the
    counts are in the report, nothing is dropped silently. The full GX result and a Data Docs
    page go to the evidence store.

    :param dataset: dataset reference from upstream (digest verified) or a URI. Templated.
    :param suite: expectation suite JSON path or URI (default: the demo's credit-risk suite).
    :param reference: reference dataset (reference dict or URI).
    :param reference_model: without ``reference``: compare with the training data of this
        registered model's champion, found through MLflow lineage (none yet: no comparison).
    :param drift_expected: truthy (templated: e.g. a retrain request's reason) when the batch
        is known to have drifted: drift and the label shift it brings only warn in this run,
        and outliers are judged against the batch itself rather than the old reference.
    :param quarantine: move outlier rows into ``data/quarantine.parquet``.
    :param label_column: the label column of the data (overrides the policy's); without one
        the label-shift screen does not run and the report says so.
    :param exclude_columns: more columns to leave out of the screens (IDs, free text, PII).
    :return: the gate summary plus ``dataset`` (what downstream should read) and
        ``data_docs_uri``.
    """

    template_fields: Sequence[str] = fields(
        "dataset", "suite", "reference", "reference_model", "drift_expected"
    )
    ui_color = "#e6f4f1"

    def __init__(
        self,
        *,
        dataset: Any,
        suite: str = DEFAULT_SUITE,
        reference: Any = None,
        reference_model: str | None = None,
        drift_expected: Any = False,
        quarantine: bool = False,
        label_column: str | None = None,
        exclude_columns: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.label_column = label_column
        self.exclude_columns = tuple(exclude_columns)
        self.dataset = dataset
        self.suite = suite
        self.reference = reference
        self.reference_model = reference_model
        self.drift_expected = drift_expected
        self.quarantine = quarantine

    def execute(self, context: Any) -> dict[str, Any]:
        with self.gate_errors_recorded(context, GATE):
            return self._validate(context)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs and outputs with their digests, for Airflow's OpenLineage provider."""
        return operator_lineage(*getattr(self, "_lineage", ((), ())))

    def _champion_reference(self) -> dict[str, Any] | None:
        """The champion's training dataset (uri + sha256) through lineage; None: no champion."""
        if not self.reference_model:
            return None
        from mlflow import MlflowClient

        from mlsecops_provider.core.tracking.registry import CHAMPION, alias_version
        from mlsecops_provider.core.validation.drift import champion_training_reference

        settings = Settings.from_env()
        client = MlflowClient(settings.tracking_uri, settings.registry_uri)
        try:
            client.get_registered_model(self.reference_model)
        except Exception:  # no such model yet: the first run has nothing to compare with
            self.log.info("No registered model %s yet: no reference batch", self.reference_model)
            return None
        if alias_version(client, self.reference_model, CHAMPION) is None:
            self.log.info("%s has no champion yet: no reference batch", self.reference_model)
            return None
        found = champion_training_reference(settings, self.reference_model)
        self.log.info("Reference: %s v%s trained on %s", found.model_name, found.version, found.uri)
        return {"uri": found.uri, "sha256": found.sha256}

    def _read(self, value: Any) -> tuple[Any, DatasetRef]:
        factory = self.s3_factory
        if isinstance(value, str):
            return read_table(normalise_uri(value), None, factory)
        if isinstance(value, dict) and "rows" not in value and "dataset" not in value:
            return read_table(value["uri"], value["sha256"], factory)  # a lineage reference
        expected = dataset_from_xcom(value)
        return read_table(expected.uri, expected.sha256, factory)

    def _validate(self, context: Any) -> dict[str, Any]:
        config = ValidationConfig.from_policy(self.load_policy())
        screens_config = config.screens.with_columns(self.label_column, self.exclude_columns)
        config = replace(config, screens=screens_config)
        if self.drift_expected and str(self.drift_expected).lower() not in ("false", "0", "none"):
            warn_only = tuple(sorted({*config.screens.warn_only, *DRIFT_SCREENS}))
            screens_config = replace(config.screens, warn_only=warn_only, outlier_basis="batch")
            config = replace(config, screens=screens_config)
            self.log.info(
                "Drift expected in this batch: %s only warn; outliers judged within the batch",
                ", ".join(DRIFT_SCREENS),
            )
        suite = load_suite(normalise_uri(self.suite) if "://" in self.suite else self.suite)
        frame, ref = self._read(self.dataset)
        reference_value = self.reference or self._champion_reference()
        reference, reference_ref = self._read(reference_value) if reference_value else (None, None)
        self.log.info("Validating %s (%d rows) with suite %s", ref.uri, ref.rows, suite.name)
        subjects = {"data": f"sha256:{ref.sha256}"}
        if reference_ref is not None:
            subjects["reference"] = f"sha256:{reference_ref.sha256}"
        screens = None
        if config.screens.enabled:
            screens = screen_dataset(frame, reference, config.screens, quarantine=self.quarantine)
        key = run_key(context)
        output, quarantine = ref, None
        if self.quarantine and screens is not None and screens.outlier_mask is not None:
            # The screens judged the whole batch; the suite judges what training will read.
            output, quarantine = self._split(frame, screens.outlier_mask, key)
            frame = frame[~screens.outlier_mask]
        result, details = validate_dataset(frame, suite, reference, config, subjects, screens)
        if quarantine:
            details["quarantine"] = quarantine
        store = self.evidence_store()
        page = details.pop("data_docs_html", None)
        docs_uri = self._store_docs(store, key.dag_id, key.run_id, page)
        summary = self.record_gate(context, result, details)
        self._lineage = ([ref], [output])
        return {**summary, "dataset": output.to_dict(), "data_docs_uri": docs_uri}

    def _store_docs(
        self, store: EvidenceStore, dag_id: str, run_id: str, page: str | None
    ) -> str | None:
        if not page:
            return None
        ref = store.put_bytes(
            store.uri_for(dag_id, run_id, GATE, "data_docs.html"), page.encode(), "text/html"
        )
        self.log.info("Data Docs: %s", ref.uri)
        return ref.uri

    def _split(self, frame: Any, mask: Any, key: Any) -> tuple[DatasetRef, dict[str, Any]]:
        """Write kept rows and quarantined rows as two datasets; return the kept one."""
        settings = Settings.from_env()
        factory = self.s3_factory
        kept_uri = settings.run_artifact_uri(key.dag_id, key.run_id, "data", "validated.parquet")
        quarantine_uri = settings.run_artifact_uri(
            key.dag_id, key.run_id, "data", "quarantine.parquet"
        )
        kept = write_table(frame[~mask].reset_index(drop=True), kept_uri, s3_client_factory=factory)
        held = write_table(
            frame[mask].reset_index(drop=True), quarantine_uri, s3_client_factory=factory
        )
        self.log.info("Quarantined %d of %d rows into %s", held.rows, len(frame), held.uri)
        return kept, {"kept": kept.to_dict(), "quarantined": held.to_dict()}
