"""PIIDeidentifyShardOperator: de-identify and verify one shard with the plan (mapped)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlsecops_provider.core.errors import ConfigError
from mlsecops_provider.core.pii.gate import GATE, Deidentifier
from mlsecops_provider.core.pii.shard_plan import read_plan
from mlsecops_provider.core.pii.sharded import deidentify_shard
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.shards.split import ShardRef
from mlsecops_provider.operators._runtime import bad_input_fails_task, run_key
from mlsecops_provider.operators.base import MLSecOpsOperator, fields
from mlsecops_provider.operators.pii_plan import pii_config, sharding_key


class PIIDeidentifyShardOperator(MLSecOpsOperator):
    """Transform and verify one shard in chunks with the plan of :class:`PIIPlanOperator`.

    Use it mapped: ``PIIDeidentifyShardOperator.partial(plan=plan.output, ...)
    .expand(shard=shards)``. The shard's bytes and the plan's are verified by digest. A
    shard with residual PII above the policy's ``max_residual_rate`` writes no output (the
    merge then fails the gate); otherwise the de-identified shard goes to the run's
    artifact area (``data/deidentified-shards/``) with a partial (counts, residual
    tallies, timings; no value) beside it (``pii/partials/``). Re-running a finished shard
    task keeps its output and partial (same digests).

    :param shard: one shard reference (``ShardRef.to_dict()``). Templated.
    :param plan: the plan task's return value (``{"uri", "sha256"}``). Templated.
    :param label_column, key_conn_id, key_env, chunk_rows: as for the plan task (they must
        give the same policy, or the shard is refused).
    :return: the shard, its partial and output by URI and digest, rows, residual rows.
    """

    template_fields: Sequence[str] = fields("shard", "plan", "key_conn_id")
    ui_color = "#f3e8fb"

    def __init__(
        self,
        *,
        shard: Any,
        plan: Any,
        label_column: str | None = None,
        key_conn_id: str | None = None,
        key_env: str | None = None,
        chunk_rows: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.shard = shard
        self.plan = plan
        self.label_column = label_column
        self.key_conn_id = key_conn_id
        self.key_env = key_env
        self.chunk_rows = chunk_rows

    def execute(self, context: Any) -> dict[str, Any]:
        with bad_input_fails_task():
            return self._deidentify(context)

    def _deidentify(self, context: Any) -> dict[str, Any]:
        if not isinstance(self.plan, dict) or not self.plan.get("uri"):
            raise ConfigError(f"{GATE}: plan must be the plan task's return value")
        config = pii_config(self.load_policy(), self.label_column, self.chunk_rows)
        key = sharding_key(config, self.key_conn_id, self.key_env)
        plan_uri, plan_sha256 = str(self.plan["uri"]), str(self.plan["sha256"])
        plan = read_plan(plan_uri, plan_sha256, self.s3_factory)
        shard = ShardRef.from_dict(self.shard)
        deidentifier = Deidentifier.prepare(config, key if config.needs_key else None)
        settings, run = Settings.from_env(), run_key(context)
        name = f"shard-{shard.index:05d}-of-{shard.count:05d}"
        output = settings.run_artifact_uri(
            run.dag_id, run.run_id, "data", "deidentified-shards", f"{name}.{shard.format}"
        )
        partial = settings.run_artifact_uri(
            run.dag_id, run.run_id, "pii", "partials", f"{name}.json"
        )
        done = deidentify_shard(deidentifier, plan, plan_sha256, shard.to_dict(), key, output,
                                partial, self.s3_factory, plan_uri)  # fmt: skip
        self.log.info(
            "%s: %s rows, %s residual%s%s",
            shard.label,
            f"{done.rows:,}",
            f"{done.residual_rows:,}",
            "" if done.output else " (residual PII above the maximum: no output written)",
            " (already done: earlier output and partial kept)" if done.reused else "",
        )
        return done.to_dict()
