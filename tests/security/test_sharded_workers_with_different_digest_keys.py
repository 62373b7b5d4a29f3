"""Attack: hide duplicated (poisoned) rows spread over shards by having one worker digest its
shard under another key (``MLSECOPS_SHARD_DIGEST_KEY`` set differently, or not at all, on
one Celery worker): equal rows then get different hashes, the merge sees no duplicate across
shards, and the screen passes a batch that is half copies.

Proves: each partial records a one-way fingerprint of its key (never the key: it differs
with the secret, and the secret does not appear in it), the merge refuses partials digested
under different keys with verdict ``error`` naming the shard and the variable, and under one
key the duplicates across shards are found.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mlsecops_provider.core.data.datasets import read_table, write_table
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.shards.split import split_dataset
from mlsecops_provider.core.shards.stats import KEY_ENV
from mlsecops_provider.core.validation import gate as g
from mlsecops_provider.core.validation.poisoning import PoisoningConfig
from mlsecops_provider.core.validation.sharded import partial_bytes, validate_shard
from mlsecops_provider.core.validation.sharded_merge import merge_partials

SUITE = {"name": "rows", "expectations": [{"type": "expect_table_row_count_to_be_between",
                                            "kwargs": {"min_value": 1}}]}  # fmt: skip
CONFIG = g.ValidationConfig(
    screens=PoisoningConfig(duplicate_rate_threshold=0.1), render_html=False
)
SECRET = "worker-secret-0123456789"


def _partials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets: list[str | None]):
    base = pd.DataFrame({"amount": range(200), "city": [f"c{i % 7}" for i in range(200)]})
    frame = pd.concat([base, base], ignore_index=True)  # every row twice, copies in shard 2
    data = write_table(frame, (tmp_path / "in.parquet").as_uri())
    shards = split_dataset(data.uri, data.sha256, (tmp_path / "shards").as_uri(), shard_count=2)
    parts = []
    for shard, secret in zip(shards, secrets, strict=True):
        if secret is None:
            monkeypatch.delenv(KEY_ENV, raising=False)
        else:
            monkeypatch.setenv(KEY_ENV, secret)
        rows, _ = read_table(shard.uri, shard.sha256)
        parts.append(json.loads(partial_bytes(validate_shard(rows, shard, SUITE, None, CONFIG))))
    return parts


@pytest.mark.parametrize("second", ["another-secret", None], ids=["other-secret", "no-secret"])
def test_a_worker_digesting_under_another_key_makes_the_merge_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second: str | None
) -> None:
    parts = _partials(tmp_path, monkeypatch, [SECRET, second])
    assert parts[0]["digest_key"] != parts[1]["digest_key"]
    assert SECRET not in json.dumps(parts)
    result, details = merge_partials(parts, SUITE, CONFIG)
    assert result.verdict is Verdict.ERROR
    assert "shard 2/2" in result.message and KEY_ENV in result.message, result.message


def test_under_one_key_the_copies_across_shards_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = _partials(tmp_path, monkeypatch, [SECRET, SECRET])
    assert parts[0]["digest_key"] == parts[1]["digest_key"]
    assert parts[0]["digest_key"]["secret"] is True
    result, details = merge_partials(parts, SUITE, CONFIG)
    assert result.verdict is Verdict.FAIL, result.message
    assert result.metrics["duplicates_rate"] == 0.5, result.metrics
