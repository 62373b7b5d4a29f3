"""DataValidationShardOperator: the map task of sharded data validation (one shard)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from mlsecops_provider.core.data.datasets import dataset_from_xcom, read_table, write_table
from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.policy import Policy
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.shards.split import ShardRef
from mlsecops_provider.core.storage import normalise_uri
from mlsecops_provider.core.validation.gate import GATE, ValidationConfig
from mlsecops_provider.core.validation.poisoning import screen_dataset
from mlsecops_provider.core.validation.sharded import (
    partial_bytes,
    quarantine_mask,
    validate_shard,
)
from mlsecops_provider.core.validation.suite import load_suite
from mlsecops_provider.operators._runtime import bad_input_fails_task, run_key
from mlsecops_provider.operators.base import MLSecOpsOperator, fields
from mlsecops_provider.operators.validation import DEFAULT_SUITE, DRIFT_SCREENS

PARTIAL_NAME = "shard-{index:05d}-of-{count:05d}.json"


def validation_config(
    policy: Policy,
    label_column: str | None,
    exclude_columns: Sequence[str],
    drift_expected: Any,
) -> ValidationConfig:
    """The gate's configuration as :class:`DataValidationOperator` builds it."""
    config = ValidationConfig.from_policy(policy)
    config = replace(config, screens=config.screens.with_columns(label_column, exclude_columns))
    if drift_expected and str(drift_expected).lower() not in ("false", "0", "none"):
        warn_only = tuple(sorted({*config.screens.warn_only, *DRIFT_SCREENS}))
        screens = replace(config.screens, warn_only=warn_only, outlier_basis="batch")
        config = replace(config, screens=screens)
    return config


def reference_value(operator: Any) -> Any:
    """The reference given, or the champion's training data (None: nothing to compare)."""
    from mlsecops_provider.operators.validation import DataValidationOperator

    if operator.reference:
        return operator.reference
    return DataValidationOperator._champion_reference(operator)


def read_reference(value: Any, factory: Any) -> tuple[Any, Any]:
    if value is None:
        return None, None
    if isinstance(value, str):
        return read_table(normalise_uri(value), None, factory)
    if isinstance(value, Mapping) and "rows" not in value and "dataset" not in value:
        return read_table(value["uri"], value["sha256"], factory)
    expected = dataset_from_xcom(value)
    return read_table(expected.uri, expected.sha256, factory)


class DataValidationShardOperator(MLSecOpsOperator):
    """Validate one shard: the partial statistics a :class:`DataValidationMergeOperator` merges.

    Meant for ``.partial(...).expand(shard=split.output)``. Reads the shard (digest verified),
    computes its partial (:func:`validate_shard`: counts and statistics, no raw PII value, no
    timestamp), stores it as JSON in the evidence store and returns where it is and its digest.
    Re-running the task writes the same bytes. With one shard the partial is the single-task
    gate's whole result (and quarantine works as in :class:`DataValidationOperator`).

    :param shard: a shard reference (``ShardRef.to_dict()``) from the split task. Templated.
    :param suite, reference, reference_model, drift_expected, quarantine, label_column,
        exclude_columns: as for :class:`DataValidationOperator` (the merge task must get the
        same values).
    :return: ``{"shard", "partial": {"uri", "sha256"}, "kept"}``; ``kept`` is the shard
        downstream should read (the shard itself unless quarantine moved rows out of it).
    """

    template_fields: Sequence[str] = fields(
        "shard", "suite", "reference", "reference_model", "drift_expected"
    )
    ui_color = "#e6f4f1"

    def __init__(
        self,
        *,
        shard: Any,
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
        self.shard = shard
        self.suite = suite
        self.reference = reference
        self.reference_model = reference_model
        self.drift_expected = drift_expected
        self.quarantine = quarantine
        self.label_column = label_column
        self.exclude_columns = tuple(exclude_columns)

    def execute(self, context: Any) -> dict[str, Any]:
        with bad_input_fails_task():  # a changed shard fails at once, with both digests
            return self._validate(context)

    def _validate(self, context: Any) -> dict[str, Any]:
        shard = ShardRef.from_dict(self.shard)
        config = validation_config(
            self.load_policy(), self.label_column, self.exclude_columns, self.drift_expected
        )
        suite = load_suite(normalise_uri(self.suite) if "://" in self.suite else self.suite)
        frame, _ = read_table(shard.uri, shard.sha256, self.s3_factory)
        if len(frame) != shard.rows:
            raise DataError(f"{shard.label}: {len(frame)} rows read, the shard says {shard.rows}")
        reference, reference_ref = read_reference(reference_value(self), self.s3_factory)
        key = run_key(context)
        run = {"dag_id": key.dag_id, "run_id": key.run_id}
        kept: ShardRef | None = shard
        screens, extra, held = None, None, None
        if shard.count == 1 and self.quarantine and config.screens.enabled:
            screens = screen_dataset(frame, reference, config.screens, quarantine=True)
            if screens.outlier_mask is not None:
                kept, extra = self._split(frame, screens.outlier_mask, key)
                frame = frame[~screens.outlier_mask]
        elif self.quarantine:
            mask, _ = quarantine_mask(frame, reference, config)
            if mask is not None:  # else the partial says why and the merge is an error
                kept, held = self._split_shard(frame, mask, shard, key)
        partial = validate_shard(
            frame,
            shard,
            suite,
            reference,
            config,
            reference_sha256=reference_ref.sha256 if reference_ref else None,
            run=run,
            quarantine=self.quarantine,
            screens=screens,
        )
        if extra is not None:
            partial["details"]["quarantine"] = extra
        store = self.evidence_store()
        name = PARTIAL_NAME.format(index=shard.index, count=shard.count)
        stored = store.put_bytes(
            store.uri_for(key.dag_id, key.run_id, GATE, name),
            partial_bytes(partial),
            "application/json",
        )
        self.log.info("%s: %s rows, %s", shard.label, f"{shard.rows:,}", _progress(partial))
        return {
            "shard": shard.to_dict(),
            "partial": {"uri": stored.uri, "sha256": stored.sha256},
            "kept": kept.to_dict() if kept else None,
            "quarantined": held,
        }

    def _split_shard(
        self, frame: Any, mask: Any, shard: ShardRef, key: Any
    ) -> tuple[ShardRef | None, dict[str, Any] | None]:
        """Several shards with quarantine: this shard's kept rows and outlier rows, as files
        named after the shard (the merge numbers the kept shards and their offsets)."""
        settings = Settings.from_env()
        name = f"shard-{shard.index:05d}-of-{shard.count:05d}.parquet"
        uri_of = lambda kind: settings.run_artifact_uri(key.dag_id, key.run_id, "data", kind, name)  # noqa: E731
        kept_rows, held_rows = frame[~mask], frame[mask]
        kept = held = None
        if len(kept_rows):
            written = write_table(kept_rows.reset_index(drop=True), uri_of("validated"),
                                  s3_client_factory=self.s3_factory)  # fmt: skip
            kept = ShardRef(
                written.uri, written.sha256, shard.index, shard.count, shard.offset,
                written.rows, "parquet", shard.source_uri, shard.source_sha256,
            )  # fmt: skip
        if len(held_rows):
            held = write_table(held_rows.reset_index(drop=True), uri_of("quarantine"),
                               s3_client_factory=self.s3_factory).to_dict()  # fmt: skip
        self.log.info("%s: quarantined %d of %d rows", shard.label, len(held_rows), len(frame))
        return kept, held

    def _split(self, frame: Any, mask: Any, key: Any) -> tuple[ShardRef, dict[str, Any]]:
        """One shard with quarantine: kept rows and quarantined rows as two datasets."""
        settings = Settings.from_env()
        factory = self.s3_factory
        uri_of = lambda name: settings.run_artifact_uri(key.dag_id, key.run_id, "data", name)  # noqa: E731
        kept = write_table(frame[~mask].reset_index(drop=True), uri_of("validated.parquet"),
                           s3_client_factory=factory)  # fmt: skip
        held = write_table(frame[mask].reset_index(drop=True), uri_of("quarantine.parquet"),
                           s3_client_factory=factory)  # fmt: skip
        self.log.info("Quarantined %d of %d rows into %s", held.rows, len(frame), held.uri)
        if kept.rows < 1:
            raise DataError("quarantine moved every row out of the dataset")
        ref = ShardRef(kept.uri, kept.sha256, 0, 1, 0, kept.rows, "parquet", kept.uri, kept.sha256)
        return ref, {"kept": kept.to_dict(), "quarantined": held.to_dict()}


def _progress(partial: Mapping[str, Any]) -> str:
    if partial.get("mode") == "whole":
        result = partial["result"]
        return f"whole dataset validated: {result['verdict']} ({result['message']})"
    failed = 0
    for counts in partial.get("map", {}).values():
        failed += bool(counts.get("unexpected_count") or counts.get("exception"))
    return f"{failed} map expectation(s) with unexpected rows"
