"""Attack: a partial of another input or of another run is slipped into the merge."""

from __future__ import annotations

from pathlib import Path

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.validation.sharded import merge_partials
from tests.security._sharded_validation import CONFIG, RUN, SUITE, partials


def test_partial_of_another_input_or_run_does_not_pass(tmp_path: Path) -> None:
    """A shard validated on other data, or in another DAG run, never yields a pass."""
    mine = partials(tmp_path, seed=11)
    assert merge_partials(mine, SUITE, CONFIG, run=RUN)[0].verdict is Verdict.PASS
    other_input = partials(tmp_path, seed=12)
    mixed = [mine[0], other_input[1], mine[2]]
    result, _ = merge_partials(mixed, SUITE, CONFIG, run=RUN)
    assert result.verdict is Verdict.ERROR and "different inputs" in result.message
    other_run = partials(tmp_path, seed=11, run={"dag_id": "d", "run_id": "r0"})
    result, _ = merge_partials([mine[0], other_run[1], mine[2]], SUITE, CONFIG, run=RUN)
    assert result.verdict is Verdict.ERROR and "another run" in result.message
