"""PIIMergeOperator: merge de-identified shards into one dataset and one gate result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlsecops_provider.core.data.datasets import DatasetRef
from mlsecops_provider.core.errors import ConfigError, DataError
from mlsecops_provider.core.pii.chunks import open_source
from mlsecops_provider.core.pii.gate import GATE
from mlsecops_provider.core.pii.shard_plan import read_plan
from mlsecops_provider.core.pii.sharded_merge import merge_shards
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.tracking.lineage import LineageRecorder
from mlsecops_provider.operators._lineage import operator_lineage
from mlsecops_provider.operators._runtime import run_key
from mlsecops_provider.operators.base import MLSecOpsOperator, fields
from mlsecops_provider.operators.pii_plan import pii_config, sharding_key


class PIIMergeOperator(MLSecOpsOperator):
    """Verify every shard result and merge the outputs: what PIIDeidentifyOperator returns.

    Every partial and output shard is verified by digest and against the plan, the shards
    must cover the input exactly once, and a random sample of every output shard is
    scanned again by the rules; then the outputs are concatenated in the input's format
    (the single-task path's bytes when shards start at multiples of ``chunk_rows``). One
    GateResult ``pii_deidentification`` (subjects: the input's and the output's digests)
    adds up the partials; the dataset is published only if no shard blocks and the gate
    passes. Lineage goes to MLflow once, here.

    :param parts: the shard tasks' return values (``shard_task.output``). Templated.
    :param plan: the plan task's return value (default: the plan the parts name). Templated.
    :param label_column, key_conn_id, key_env, chunk_rows: as for the plan task.
    :return: ``{"dataset": <DatasetRef of the output>, "gate": <GateResult summary>}``
        (``multiple_outputs``), as PIIDeidentifyOperator returns.
    """

    template_fields: Sequence[str] = fields("parts", "plan", "key_conn_id")
    ui_color = "#f3e8fb"

    def __init__(
        self,
        *,
        parts: Any,
        plan: Any = None,
        label_column: str | None = None,
        key_conn_id: str | None = None,
        key_env: str | None = None,
        chunk_rows: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.parts = parts
        self.plan = plan
        self.label_column = label_column
        self.key_conn_id = key_conn_id
        self.key_env = key_env
        self.chunk_rows = chunk_rows

    def execute(self, context: Any) -> dict[str, Any]:
        with self.gate_errors_recorded(context, GATE):
            return self._merge(context)

    def _merge(self, context: Any) -> dict[str, Any]:
        settings = Settings.from_env()
        config = pii_config(self.load_policy(), self.label_column, self.chunk_rows)
        key = sharding_key(config, self.key_conn_id, self.key_env)
        parts = [p for p in list(self.parts if self.parts is not None else []) if p is not None]
        plan_ref = self._plan_ref(parts)
        plan = read_plan(plan_ref["uri"], plan_ref["sha256"], self.s3_factory)
        run = run_key(context)
        name = f"deidentified.{plan.data['format']}"
        target = settings.run_artifact_uri(run.dag_id, run.run_id, "data", name)
        merged = merge_shards(config, plan, plan_ref["sha256"], parts, key, target,
                              self.s3_factory)  # fmt: skip
        self.log.info("Merged %d shard(s) of %s: %s", len(parts), merged.source.uri,
                      merged.result.verdict.value)  # fmt: skip
        if merged.output is not None:
            self._log_lineage(settings, context, merged.output, config.chunk_rows)
            self.log.info("Wrote %s (sha256 %s)", merged.output.uri, merged.output.sha256)
        summary = self.record_gate(context, merged.result, merged.details, settings=settings)
        self._lineage = ([merged.source], [merged.output] if merged.output else [])
        return {"dataset": merged.output.to_dict() if merged.output else None, "gate": summary}

    def _plan_ref(self, parts: list[Any]) -> dict[str, str]:
        if isinstance(self.plan, dict) and self.plan.get("uri"):
            return {"uri": str(self.plan["uri"]), "sha256": str(self.plan["sha256"])}
        named = {(p.get("plan") or {}).get("uri", "") for p in parts if isinstance(p, dict)}
        digests = {(p.get("plan") or {}).get("sha256", "") for p in parts if isinstance(p, dict)}
        if not parts or len(named) != 1 or len(digests) != 1 or "" in named | digests:
            raise ConfigError(f"{GATE}: the shard results do not name one plan; pass plan=")
        return {"uri": named.pop(), "sha256": digests.pop()}

    def _log_lineage(self, settings: Settings, context: Any, output: DatasetRef, rows: int) -> None:
        """The output dataset in MLflow (its first chunk, de-identified, for the profile)."""
        with open_source(output.uri, output.sha256, self.s3_factory, rows) as source:
            first = next(source.chunks(), None)
        if first is None:
            raise DataError(f"{output.uri}: empty output")
        lineage = LineageRecorder(settings)
        lineage.log_dataset(
            lineage.run_for(run_key(context)),
            first.frame,
            output,
            name="deidentified",
            context="deidentified",
            targets=self.label_column,
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs and outputs with their digests, for Airflow's OpenLineage provider."""
        return operator_lineage(*getattr(self, "_lineage", ((), ())))
