"""Attack: a shard's partial is dropped (its rows would go unchecked) or sent twice."""

from __future__ import annotations

from pathlib import Path

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.validation.sharded_merge import merge_partials
from tests.security._sharded_validation import CONFIG, RUN, SUITE, partials


def test_missing_or_duplicated_shard_does_not_pass(tmp_path: Path) -> None:
    """Every row is validated exactly once or the gate is an error."""
    parts = partials(tmp_path, count=3)
    for broken in ([parts[0], parts[2]], [parts[0], parts[1], parts[1]], parts[:2]):
        result, _ = merge_partials(broken, SUITE, CONFIG, run=RUN)
        assert result.verdict is Verdict.ERROR
        assert "exactly once" in result.message
    assert merge_partials([], SUITE, CONFIG, run=RUN)[0].verdict is Verdict.ERROR
