"""Red team, trust chain: two promotions racing for one alias cannot both win.

Two real promotions of the same registered model run in two threads and are released
together right before the move (after both read the champion, signed and verified), the
worst interleaving for MLflow's non-atomic alias write. The audit log's conditional append
decides: exactly one moves the alias, the other is refused with an audit entry and leaves
nothing behind in MLflow (no promotion tags, aliases as the winner set them).
"""

from __future__ import annotations

import threading
from typing import Any

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.promotion.record import TAG_EVIDENCE_URI
from mlsecops_provider.core.promotion.verify import verify_promotion
from mlsecops_provider.core.tracking.registry import alias_version
from tests.core.promotion import test_promotion
from tests.core.promotion.test_promotion import World, new_version, run_promotion

world = test_promotion.world  # the module-scoped fixture: MLflow, keys, evidence store


def test_two_promotions_racing_exactly_one_moves_the_alias(world: World) -> None:
    """Released together before the move, one promotion wins; the loser is refused, audited."""
    name = "race-threads"
    champion = new_version(world, name, 80)
    assert run_promotion(world, champion, "run-race-t0")[0].verdict is Verdict.PASS
    rivals = [new_version(world, name, 81), new_version(world, name, 82)]
    barrier = threading.Barrier(2, timeout=120)
    outcome: dict[str, Any] = {}

    def promote(index: int) -> None:
        try:
            outcome[rivals[index].version] = run_promotion(
                world, rivals[index], f"run-race-t{index + 1}", before_move=barrier.wait
            )[0]
        except Exception as err:  # surfaced by the assertions below
            outcome[rivals[index].version] = err

    threads = [threading.Thread(target=promote, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    results = {v: r for v, r in outcome.items() if not isinstance(r, Exception)}
    assert len(results) == 2, outcome
    winners = [v for v, r in results.items() if r.verdict is Verdict.PASS]
    losers = [v for v, r in results.items() if r.verdict is Verdict.FAIL]
    assert len(winners) == 1 and len(losers) == 1, {v: r.message for v, r in results.items()}
    assert "lost the race" in results[losers[0]].message
    assert alias_version(world.client, name, "champion") == winners[0]
    assert alias_version(world.client, name, "previous-champion") == champion.version
    assert TAG_EVIDENCE_URI not in world.client.get_model_version(name, losers[0]).tags
    entries = [e for e in world.audit.entries() if e.details.get("registered_model") == name]
    moves = [e for e in entries if e.kind == "promotion"]
    assert [e.details["version"] for e in moves] == [champion.version, winners[0]]
    refusal = [e for e in entries if e.kind == "refusal"]
    assert refusal and refusal[-1].details["version"] == losers[0]
    check = verify_promotion(
        name,
        "champion",
        world.keys.public_path.read_bytes(),
        world.settings.tracking_uri,
        audit_log_uri=world.audit.uri,
    )
    assert check.verified and check.version == winners[0], check.reason
