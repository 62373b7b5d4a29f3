"""DataValidationMergeOperator: the reduce task of sharded data validation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlsecops_provider.core.data.datasets import DatasetRef
from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.evidence import EvidenceStore
from mlsecops_provider.core.shards.split import ShardRef, check_cover
from mlsecops_provider.core.storage import normalise_uri
from mlsecops_provider.core.validation.gate import GATE
from mlsecops_provider.core.validation.sharded_merge import merge_partials
from mlsecops_provider.core.validation.suite import load_suite
from mlsecops_provider.operators._lineage import operator_lineage
from mlsecops_provider.operators._runtime import run_key
from mlsecops_provider.operators.base import MLSecOpsOperator, fields
from mlsecops_provider.operators.validation import DEFAULT_SUITE
from mlsecops_provider.operators.validation_shard import validation_config


class DataValidationMergeOperator(MLSecOpsOperator):
    """Merge the shards' partials into one data validation gate (recorded like the single task).

    Reads the partials from the evidence store one at a time as the merge asks for them (digest
    verified; each must lie in this run's folder; their digests spill to local files, so the
    task's memory is bounded by a shard's partial, not by the table), checks that they cover one
    input exactly once with the same suite, configuration and reference, merges them
    (:func:`merge_partials`) and records the gate with a Data Docs page. Subjects: the input's
    digest (``source_sha256``), the reference and the suite. A partial that cannot be merged (an
    expectation type without an exact merge, dtypes that differ between CSV shards, quarantine
    over several shards) gives verdict ``error``.

    :param parts: the map tasks' outputs (``validate.output`` of the mapped shard task).
    :param suite, drift_expected, label_column, exclude_columns: the values the map tasks got.
    :return: the gate summary plus ``data_docs_uri``, ``shards`` (the kept shards in order)
        and ``dataset`` (with one shard: the dataset downstream should read).
    """

    template_fields: Sequence[str] = fields("parts", "suite", "drift_expected")
    ui_color = "#e6f4f1"

    def __init__(
        self,
        *,
        parts: Any,
        suite: str = DEFAULT_SUITE,
        drift_expected: Any = False,
        label_column: str | None = None,
        exclude_columns: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.parts = parts
        self.suite = suite
        self.drift_expected = drift_expected
        self.label_column = label_column
        self.exclude_columns = tuple(exclude_columns)

    def execute(self, context: Any) -> dict[str, Any]:
        with self.gate_errors_recorded(context, GATE):
            return self._merge(context)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return operator_lineage(*getattr(self, "_lineage", ((), ())))

    def _merge(self, context: Any) -> dict[str, Any]:
        config = validation_config(
            self.load_policy(), self.label_column, self.exclude_columns, self.drift_expected
        )
        suite = load_suite(normalise_uri(self.suite) if "://" in self.suite else self.suite)
        key = run_key(context)
        store = self.evidence_store()
        outputs = [_output(o) for o in list(self.parts or [])]
        if not outputs:
            raise DataError("no shard results to merge")
        folder = store.uri_for(key.dag_id, key.run_id, GATE, "x")[:-1]
        shards = check_cover([ShardRef.from_dict(o["shard"]) for o in outputs])
        first = shards[0]
        head = self._read(store, outputs[0], folder)  # read again by the merge: one at a time
        reference, columns = head.get("reference_sha256"), tuple(head.get("columns") or ())
        del head
        partials = (self._read(store, o, folder) for o in outputs)
        subjects = {"data": f"sha256:{first.source_sha256}"}
        if reference:
            subjects["reference"] = f"sha256:{reference}"
        run = {"dag_id": key.dag_id, "run_id": key.run_id}
        result, details = merge_partials(
            partials, suite, config, subjects, run=run, reference_sha256=reference
        )
        kept = _kept_shards(sorted(outputs, key=_index), first)
        details["shards"] = {**details.get("shards", {}), "kept": [k.to_dict() for k in kept]}
        held = [o.get("quarantined") for o in sorted(outputs, key=_index) if o.get("quarantined")]
        if held:
            details.setdefault("quarantine", {})["quarantined"] = held
        page = details.pop("data_docs_html", None)
        docs_uri = self._store_docs(store, key.dag_id, key.run_id, page)
        summary = self.record_gate(context, result, details)
        self.log.info("Merged %d shard(s) of %s: %s", len(shards), first.source_uri,
                      summary.get("verdict"))  # fmt: skip
        rows = sum(s.rows for s in shards)
        source = DatasetRef(first.source_uri, first.source_sha256, rows, columns, first.format)
        self._lineage = ([source], [DatasetRef(k.uri, k.sha256, k.rows, columns, k.format)
                                    for k in kept])  # fmt: skip
        out = {**summary, "data_docs_uri": docs_uri, "shards": [k.to_dict() for k in kept]}
        if len(kept) == 1:
            only = kept[0]
            out["dataset"] = DatasetRef(only.uri, only.sha256, only.rows, columns,
                                        only.format).to_dict()  # fmt: skip
        return out

    def _read(self, store: EvidenceStore, output: Mapping[str, Any], folder: str) -> dict[str, Any]:
        shard = ShardRef.from_dict(output["shard"])
        ref = output["partial"]
        uri, digest = str(ref["uri"]), str(ref["sha256"])
        if not uri.startswith(folder):
            raise DataError(f"{shard.label}: partial {uri} is not in this run's evidence folder")
        partial = store.read_json(uri, digest)
        if ShardRef.from_dict(partial.get("shard")) != shard:
            raise DataError(f"{shard.label}: the partial at {uri} is of another shard")
        return partial

    def _store_docs(
        self, store: EvidenceStore, dag_id: str, run_id: str, page: str | None
    ) -> str | None:
        if not page:
            return None
        uri = store.uri_for(dag_id, run_id, GATE, "data_docs.html")
        return store.put_bytes(uri, page.encode(), "text/html").uri


def _kept_shards(outputs: Sequence[Mapping[str, Any]], first: ShardRef) -> list[ShardRef]:
    """The shards downstream reads: the input's, or (quarantine over several shards) the kept
    rows of each shard, numbered again with their offsets, as a dataset of their own (its
    ``source_sha256`` is the digest of the kept shards' digests in order)."""
    import hashlib

    shards = [ShardRef.from_dict(o["shard"]) for o in outputs]
    kept = [ShardRef.from_dict(o["kept"]) for o in outputs if o.get("kept")]
    if [k.uri for k in kept] == [s.uri for s in shards]:
        return kept
    if not kept:
        raise DataError(f"quarantine moved every row of {first.source_uri} out")
    digest = hashlib.sha256("\n".join(k.sha256 for k in kept).encode()).hexdigest()
    source, offset, out = f"{first.source_uri}#validated", 0, []
    for index, ref in enumerate(kept):
        out.append(ShardRef(ref.uri, ref.sha256, index, len(kept), offset, ref.rows, ref.format,
                            source, digest))  # fmt: skip
        offset += ref.rows
    return check_cover(out)


def _output(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not {"shard", "partial", "kept"} <= set(value):
        raise DataError(f"not a shard validation result: {str(value)[:200]}")
    return value


def _index(output: Mapping[str, Any]) -> int:
    return int(output["shard"]["index"])
