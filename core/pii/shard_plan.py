"""The documents of sharded de-identification: the plan and the partials, as JSON files.

Both are canonical JSON (sorted keys, no spaces) addressed by their SHA-256, and hold no
value of the data: the plan keeps the column strategies, the sampling seed, the safe
column names with keyed digests of the input's names, the deny list as keyed digests
(:class:`.names.DenyDigests`) and a keyed check value that tells a task holding another
key to stop (its digests would silently match nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlsecops_provider.core.errors import ConfigError, DataError, DigestMismatchError
from mlsecops_provider.core.pii.gate import PIIConfig, config_summary
from mlsecops_provider.core.pii.names import DenyDigests, digest_key, keyed_digest
from mlsecops_provider.core.pii.plan import ColumnPlan
from mlsecops_provider.core.pii.transform import MIN_KEY_BYTES
from mlsecops_provider.core.shards.split import ShardRef
from mlsecops_provider.core.storage import S3ClientFactory, read_verified, sha256_bytes, storage_for

PLAN_SCHEMA = "mlsecops.pii-plan/v1"
PARTIAL_SCHEMA = "mlsecops.pii-partial/v1"
KEY_CHECK = "key-check"


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def check_key(key: bytes | None) -> bytes:
    if not key or len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            "sharded de-identification needs the pseudonymisation key (>= "
            f"{MIN_KEY_BYTES} bytes, key_env or key_conn_id): the deny list crosses tasks "
            "only as digests keyed with it"
        )
    return key


@dataclass(frozen=True)
class ShardPlan:
    """The plan every shard task uses (a JSON file, addressed by its digest)."""

    data: dict[str, Any] = field(repr=False)

    @property
    def chunk_rows(self) -> int:
        return int(self.data["chunk_rows"])

    @property
    def plans(self) -> list[ColumnPlan]:
        return [ColumnPlan(**p) for p in self.data["plans"]]

    @property
    def columns(self) -> list[str]:
        return list(self.data["columns"])

    def check(self, key: bytes, config: PIIConfig) -> DenyDigests | None:
        """The deny list, once the key and the policy are those the plan was made with."""
        derived = digest_key(check_key(key))
        if keyed_digest(derived, "k", KEY_CHECK) != self.data["key_check"]:
            raise ConfigError(
                "the pseudonymisation key differs from the one the plan was made with"
            )
        if canonical(config_summary(config)) != canonical(self.data["policy"]):
            raise ConfigError("the PII policy differs from the one the plan was made with")
        deny = self.data.get("deny")
        if deny is None:
            return None
        return DenyDigests(derived, frozenset(deny["words"]), frozenset(deny["values"]))

    def shard(self, data: Any) -> ShardRef:
        """``data`` as a shard reference, if it is one of the planned shards."""
        shard = ShardRef.from_dict(data)
        planned = self.data["shards"]
        if shard.count != len(planned) or shard.source_sha256 != self.data["source_sha256"]:
            raise DataError(f"{shard.label} is not a shard of the planned input")
        expected = planned[shard.index]
        if (shard.sha256, shard.offset, shard.rows) != (
            expected["sha256"],
            expected["offset"],
            expected["rows"],
        ):
            raise DigestMismatchError(shard.uri, expected["sha256"], shard.sha256)
        return shard

    def sources(self, key: bytes, names: Sequence[str]) -> dict[str, str]:
        """Safe name -> input name, if the input's names are those planned (by digest)."""
        derived = digest_key(key)
        if [keyed_digest(derived, "c", str(n)) for n in names] != self.data["column_digests"]:
            raise DataError("the shard's columns differ from the planned input's")
        return dict(zip(self.columns, map(str, names), strict=True))


def write_json(data: Mapping[str, Any], uri: str, factory: S3ClientFactory | None) -> str:
    payload = canonical(data)
    storage_for(uri, factory).write_bytes(uri, payload, "application/json")
    return sha256_bytes(payload)


def read_json(uri: str, sha256: str, schema: str, factory: S3ClientFactory | None) -> dict:
    payload = read_verified(storage_for(uri, factory), uri, sha256)
    try:
        data = json.loads(payload)
    except ValueError as err:
        raise DataError(f"{uri}: not JSON") from err
    if not isinstance(data, dict) or data.get("schema") != schema:
        raise DataError(f"{uri}: not a {schema} document")
    return data


def read_plan(uri: str, sha256: str, factory: S3ClientFactory | None = None) -> ShardPlan:
    return ShardPlan(read_json(uri, sha256, PLAN_SCHEMA, factory))
