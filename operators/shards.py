"""DatasetShardOperator: split a dataset into shards for mapped gate tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlsecops_provider.core.data.datasets import dataset_from_xcom
from mlsecops_provider.core.errors import ConfigError
from mlsecops_provider.core.pii.gate import PIIConfig
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.shards.split import split_dataset
from mlsecops_provider.core.storage import normalise_uri
from mlsecops_provider.operators._runtime import bad_input_fails_task, run_key
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


class DatasetShardOperator(MLSecOpsOperator):
    """Split a dataset (digest verified) into shards; return them for ``.expand(shard=...)``.

    A dataset of at most ``shard_rows`` rows is one shard, the dataset itself (no copy), so a
    DAG can always map over the shards and shards only when the data is big. Shards are
    written under the run's artifact area (``data/shards/<dataset_name>/``); each is addressed
    by URI and SHA-256, and every task reading one verifies it. Shard sizes are rounded up to
    a multiple of the PII gate's ``chunk_rows`` (policy), so chunks never straddle shards and
    the sharded de-identification writes the bytes the single task would.

    :param dataset: dataset reference from upstream (``{uri, sha256, ...}``) or a URI. Templated.
    :param shard_rows: rows per shard (templated: e.g. ``{{ params.shard_rows }}``).
    :param shard_count: number of shards instead of a size (wins over ``shard_rows``).
    :param dataset_name: folder name of the shards.
    :return: a list of shard references (``mlsecops.shard/v1`` dicts), in order.
    """

    template_fields: Sequence[str] = fields("dataset", "shard_rows", "shard_count")
    operator_extra_links = ()  # no gate report: no evidence link to show
    ui_color = "#eef2e6"

    def __init__(
        self,
        *,
        dataset: Any,
        shard_rows: int | str | None = None,
        shard_count: int | str | None = None,
        dataset_name: str = "dataset",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.shard_rows = shard_rows
        self.shard_count = shard_count
        self.dataset_name = dataset_name

    def execute(self, context: Any) -> list[dict[str, Any]]:
        with bad_input_fails_task():
            return self._split(context)

    def _split(self, context: Any) -> list[dict[str, Any]]:
        if isinstance(self.dataset, str):
            uri, sha256 = normalise_uri(self.dataset), None
        else:
            ref = dataset_from_xcom(self.dataset)
            uri, sha256 = ref.uri, ref.sha256
        align = PIIConfig.from_policy(self.load_policy()).chunk_rows
        key = run_key(context)
        prefix = Settings.from_env().run_artifact_uri(
            key.dag_id, key.run_id, "data", "shards", self.dataset_name
        )
        shards = split_dataset(
            uri,
            sha256,
            prefix,
            shard_rows=_count("shard_rows", self.shard_rows),
            shard_count=_count("shard_count", self.shard_count),
            align=align,
            factory=self.s3_factory,
        )
        rows = sum(s.rows for s in shards)
        self.log.info(
            "Split %s (%d rows) into %d shard(s) of up to %d rows under %s",
            uri, rows, len(shards), max(s.rows for s in shards), prefix,
        )  # fmt: skip
        return [s.to_dict() for s in shards]


def _count(name: str, value: int | str | None) -> int | None:
    """A templated count arrives as a string; empty means not given."""
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{name}: must be a positive integer, got {value!r}") from err
    if isinstance(value, float) or number < 1:
        raise ConfigError(f"{name}: must be a positive integer, got {value!r}")
    return number
