"""PIIPlanOperator: the plan of sharded de-identification, made once over every shard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from mlsecops_provider.core.errors import ConfigError
from mlsecops_provider.core.pii.gate import GATE, Deidentifier, PIIConfig
from mlsecops_provider.core.pii.shard_plan import check_key
from mlsecops_provider.core.pii.sharded import plan_shards
from mlsecops_provider.core.policy import Policy
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.operators._runtime import bad_input_fails_task, run_key
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


def pii_config(policy: Policy, label_column: str | None, chunk_rows: int | None) -> PIIConfig:
    """The gate's configuration as PIIDeidentifyOperator makes it (label excluded)."""
    config = PIIConfig.from_policy(policy)
    if label_column:
        config = replace(config, exclude_columns=(*config.exclude_columns, label_column))
    if chunk_rows is not None:
        config = replace(config, chunk_rows=chunk_rows)
    return config


def sharding_key(config: PIIConfig, key_conn_id: str | None, key_env: str | None) -> bytes:
    """The pseudonymisation key (an Airflow connection's password, else an environment
    variable), needed by every sharded task: it keys the deny list's digests."""
    import os

    conn_id = key_conn_id or config.key_conn_id
    if conn_id:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            password = BaseHook.get_connection(conn_id).password
        except AirflowNotFoundException as err:
            raise ConfigError(f"Airflow connection {conn_id!r} (PII key) is not defined") from err
        return check_key(str(password or "").encode())
    name = key_env or config.key_env
    if not name:
        raise ConfigError(f"gates.{GATE}: sharding needs a key; name it in key_env or key_conn_id")
    return check_key(os.environ.get(name, "").encode())


def shard_list(value: Any) -> list[Any]:
    """Shard references from split_dataset's list, or a merge's ``kept``/``shards`` list."""
    if isinstance(value, Mapping):
        value = value.get("kept", value.get("shards"))
    if value is None or isinstance(value, (str, bytes)):
        raise ConfigError(f"{GATE}: shards must be a list of shard references")
    return list(value)


class PIIPlanOperator(MLSecOpsOperator):
    """Plan sharded de-identification: column plan and table-wide deny list, once.

    The plan (a JSON file in the run's artifact area, addressed by its SHA-256) holds the
    column strategies decided from the input's first ``chunk_rows`` rows, the sampling seed
    (the policy's, or one fresh seed for every shard) and the deny list from the PERSON
    columns of *every* shard as keyed digests (HMAC-SHA256 under the pseudonymisation
    key), never a value. Re-running the task keeps a plan already made for these shards.

    :param shards: shard references (``split_dataset``'s, or the ``kept`` shards of a
        validation merge). Templated.
    :param label_column: passed through untouched and unscanned.
    :param key_conn_id: Airflow connection whose password is the key (default: the
        policy's). Templated.
    :param key_env: environment variable holding the key (default: the policy's).
    :param chunk_rows: rows per chunk (default: the policy's); shards should start at
        multiples of it (``split_dataset(..., align=chunk_rows)``).
    :return: ``{"uri", "sha256", "shards"}`` of the plan, for the shard and merge tasks.
    """

    template_fields: Sequence[str] = fields("shards", "key_conn_id")
    ui_color = "#f3e8fb"

    def __init__(
        self,
        *,
        shards: Any,
        label_column: str | None = None,
        key_conn_id: str | None = None,
        key_env: str | None = None,
        chunk_rows: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.shards = shards
        self.label_column = label_column
        self.key_conn_id = key_conn_id
        self.key_env = key_env
        self.chunk_rows = chunk_rows

    def execute(self, context: Any) -> dict[str, Any]:
        with bad_input_fails_task():
            config = pii_config(self.load_policy(), self.label_column, self.chunk_rows)
            key = sharding_key(config, self.key_conn_id, self.key_env)
            deidentifier = Deidentifier.prepare(config, key if config.needs_key else None)
            run = run_key(context)
            target = Settings.from_env().run_artifact_uri(
                run.dag_id, run.run_id, "pii", "plan.json"
            )
            shards = shard_list(self.shards)
            plan, digest = plan_shards(deidentifier, shards, key, target, self.s3_factory)
        self.log.info("PII plan for %d shard(s): %s (sha256 %s)", len(shards), target, digest)
        return {"uri": target, "sha256": digest, "shards": len(shards)}
