"""Attack: a reader of the evidence confirms that a person's record is in the training data:
they know the record (age, postcode, diagnosis), compute pandas' row hash of it with pandas'
public default key, and look for that hash among the duplicate screen's row hashes in a
shard's partial.

Proves: the partial's row hashes are keyed (the input's digest key, with
``MLSECOPS_SHARD_DIGEST_KEY`` the deployment's secret), so no published hash equals the
public-key hash of any row; two secrets give disjoint hashes, so without the secret a guess
cannot be confirmed; and the keyed hashes still count duplicates exactly.
"""

from __future__ import annotations

import pandas as pd
import pytest

from mlsecops_provider.core.shards import stats
from mlsecops_provider.core.validation import sharded_screens as ss
from mlsecops_provider.core.validation.poisoning_config import PoisoningConfig

RECORDS = pd.DataFrame(
    {
        "age": [34, 51, 34, 72, 29],
        "postcode": ["10115", "80331", "10115", "20095", "50667"],
        "diagnosis": ["J45", "E11", "J45", "I10", "F32"],
    }
)
SOURCE = "ab" * 32  # the input's digest: public, it is in the provenance statement


def published(part: dict[str, object]) -> set[int]:
    return {
        int(h) for field in ("in_ref", "not_in_ref") for h in stats.unpack(str(part[field]), "<u8")
    }


def test_row_hashes_in_a_partial_are_not_pandas_public_row_hashes() -> None:
    """No row hash in the partial equals the public-key hash of a row of the data."""
    part = ss.duplicate_part(RECORDS, RECORDS.head(2), PoisoningConfig(), stats.digest_key(SOURCE))
    public = pd.util.hash_pandas_object(RECORDS, index=False).to_numpy()
    assert published(part)
    assert published(part).isdisjoint(int(h) for h in public)


def test_without_the_deployment_secret_a_known_row_cannot_be_confirmed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the secret set, a reader who knows the input's digest but not the secret
    computes hashes disjoint from the published ones."""
    monkeypatch.setenv(stats.KEY_ENV, "the deployment's secret")
    part = ss.duplicate_part(RECORDS, None, PoisoningConfig(), stats.digest_key(SOURCE))
    monkeypatch.delenv(stats.KEY_ENV)
    guess = ss.duplicate_part(RECORDS, None, PoisoningConfig(), stats.digest_key(SOURCE))
    assert published(part).isdisjoint(published(guess))


def test_keyed_row_hashes_count_duplicates_exactly() -> None:
    """Keying changes no count: one repeated record in the batch, two rows of the reference."""
    part = ss.duplicate_part(RECORDS, RECORDS.head(2), PoisoningConfig(), stats.digest_key(SOURCE))
    assert part["rows"] == 5
    assert len(published(part)) == 4  # five rows, one of them a repeat
    assert len(stats.unpack(str(part["in_ref"]), "<u8")) == 2
    assert part["of_reference"] == 3  # the two reference rows, one of them twice
