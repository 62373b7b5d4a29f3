"""Attack: a stored partial is edited after the map task wrote it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsecops_provider.core.errors import DigestMismatchError
from mlsecops_provider.core.evidence import EvidenceStore, Verdict
from mlsecops_provider.core.validation.sharded import partial_bytes
from mlsecops_provider.core.validation.sharded_merge import merge_partials
from tests.security._sharded_validation import CONFIG, RUN, SUITE, partials


def test_edited_partial_is_refused(tmp_path: Path) -> None:
    """Changed bytes fail the digest check; a consistent forgery of the suite is refused."""
    store = EvidenceStore((tmp_path / "evidence").as_uri())
    parts = partials(tmp_path)
    parts[1]["map"]["1"]["unexpected_count"] = 40  # some rows in shard 2 really are null
    uri = store.uri_for("d", "r1", "data_validation", "shard-00001-of-00003.json")
    ref = store.put_bytes(uri, partial_bytes(parts[1]))
    honest = json.loads(partial_bytes(parts[1]))
    honest["map"]["1"]["unexpected_count"] = 0  # the attacker hides them in the stored file
    Path(uri.removeprefix("file://")).write_bytes(partial_bytes(honest))
    with pytest.raises(DigestMismatchError, match=ref.sha256[:12]):
        store.read_json(uri, ref.sha256)
    forged = json.loads(partial_bytes(parts[1]))
    forged["suite_sha256"] = "0" * 64  # a partial computed with another (weaker) suite
    result, _ = merge_partials([parts[0], forged, parts[2]], SUITE, CONFIG, run=RUN)
    assert result.verdict is Verdict.ERROR and "another suite" in result.message
