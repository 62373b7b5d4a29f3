"""Attack: learn from the partials alone that two columns share values (the same e-mail as
``email`` and as ``referrer_email``, the same number as ``ssn`` and as ``account``) by
intersecting the value digests the partials hold for each column.

Proves: a value's digest depends on its column (each column has its own subkey), so the
digest sets of two columns holding the same values are disjoint; within one column the
digests still agree across shards, so the merged distinct counts stay exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mlsecops_provider.core.data.datasets import read_table, write_table
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.shards.split import split_dataset
from mlsecops_provider.core.shards.stats import unpack
from mlsecops_provider.core.validation import gate as g
from mlsecops_provider.core.validation.poisoning import PoisoningConfig
from mlsecops_provider.core.validation.sharded import partial_bytes, validate_shard
from mlsecops_provider.core.validation.sharded_merge import merge_partials

EMAILS = [f"person{i}@example.org" for i in range(60)]
FRAME = pd.DataFrame(
    {
        "email": EMAILS,
        "referrer_email": EMAILS[::-1],  # the same addresses, another column
        "ssn": [f"{100000000 + i}" for i in range(60)],
        "account": [f"{100000000 + i}" for i in range(60)],
    }
)
SUITE = {
    "name": "linkage",
    "expectations": [
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": column}}
        for column in FRAME.columns
    ]
    + [
        {
            "type": "expect_column_unique_value_count_to_be_between",
            "kwargs": {"column": "email", "min_value": 60, "max_value": 60},
        }
    ],
}
CONFIG = g.ValidationConfig(screens=PoisoningConfig(enabled=False), render_html=False)


def _partials(tmp_path: Path) -> list[dict]:
    data = write_table(FRAME, (tmp_path / "in.parquet").as_uri())
    shards = split_dataset(data.uri, data.sha256, (tmp_path / "shards").as_uri(), shard_count=3)
    parts = []
    for shard in shards:
        rows, _ = read_table(shard.uri, shard.sha256)
        parts.append(json.loads(partial_bytes(validate_shard(rows, shard, SUITE, None, CONFIG))))
    return parts


def _digests(parts: list[dict], index: int) -> set[bytes]:
    """Every value digest the partials hold for expectation ``index``."""
    out: set[bytes] = set()
    for part in parts:
        statistic = part["aggregates"][str(index)]
        for field in ("distinct", "multi"):
            if statistic.get(field):
                out |= set(unpack(statistic[field], "S12").tolist())
    return out


def test_two_columns_sharing_values_have_disjoint_digests(tmp_path: Path) -> None:
    """The partials do not show that email/referrer_email or ssn/account share values."""
    parts = _partials(tmp_path)
    email, referrer, ssn, account = (_digests(parts, i) for i in range(4))
    assert len(email) == len(referrer) == len(ssn) == len(account) == 60
    assert email.isdisjoint(referrer)
    assert ssn.isdisjoint(account)


def test_within_a_column_the_merge_stays_exact(tmp_path: Path) -> None:
    """Sixty distinct addresses over three shards are counted sixty, each column unique."""
    result, details = merge_partials(_partials(tmp_path), SUITE, CONFIG)
    assert result.verdict is Verdict.PASS, result.message
    assert result.metrics["expectations_successful"] == 5
