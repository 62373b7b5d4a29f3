"""Attack: replace a local input after its digest was checked and before its rows are read
(the de-identification stream, the shard split and the ingest all verify first and read
later), so that unverified rows holding PII are processed as if they were the checked ones.

Proves: what is read is the private copy made while hashing: rows written into the source
after the check (in place, or by renaming another file over it) never reach a chunk, and the
published ingest copy has exactly the checked bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest

from mlsecops_provider.core.data.ingest import ingest_copy
from mlsecops_provider.core.pii.chunks import open_source

CANARY = "canary.person@example.org"


def _write(path: Path, note: str, fmt: str) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "note": [note, "plain", "text"]})
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("how", ["in-place", "renamed-over"])
def test_rows_written_after_the_check_are_never_read(tmp_path: Path, fmt: str, how: str) -> None:
    source = tmp_path / f"in.{fmt}"
    _write(source, "nothing here", fmt)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    with open_source(source.as_uri(), digest, chunk_rows=2) as checked:
        if how == "in-place":
            _write(source, CANARY, fmt)
        else:
            other = tmp_path / f"other.{fmt}"
            _write(other, CANARY, fmt)
            os.replace(other, source)
        rows = pd.concat([c.frame for c in checked.chunks()])
        assert checked.sha256 == digest
    assert CANARY not in rows["note"].astype(str).tolist()
    assert rows["note"].astype(str).tolist()[0] == "nothing here"


def test_ingest_publishes_the_bytes_it_hashed(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    _write(source, "nothing here", "csv")
    checked = source.read_bytes()
    target = tmp_path / "published.csv"

    def target_for(fmt: str) -> str:
        _write(source, CANARY, "csv")  # the source changes after the copy was hashed
        return target.as_uri()

    done = ingest_copy(source.as_uri(), hashlib.sha256(checked).hexdigest(), target_for)
    assert target.read_bytes() == checked
    assert done.target.sha256 == hashlib.sha256(checked).hexdigest()
    assert CANARY.encode() not in target.read_bytes()
