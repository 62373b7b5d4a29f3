"""Attack: after ``freeze_startup_objects`` (gc.freeze at server start), flood the server
with requests that leave reference cycles behind (queued shadow items, log buffers), hoping
the collector no longer reclaims them and memory grows without bound.

Proves: freezing leaves the collector enabled, moves the objects alive at start-up out of
its reach (the point of the change), and cyclic garbage made afterwards is still collected.
"""

from __future__ import annotations

import gc
import weakref

from mlsecops_provider.core.serving.server import freeze_startup_objects


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_garbage_made_after_the_freeze_is_still_collected() -> None:
    """Cycles created per request after the freeze are reclaimed by a collection."""
    before = gc.get_freeze_count()
    try:
        freeze_startup_objects()
        assert gc.isenabled()
        assert gc.get_freeze_count() > before  # start-up objects left the collector's reach
        refs = [_cycle() for _ in range(1000)]
        gc.collect()
        assert all(r() is None for r in refs)
        assert gc.get_threshold()[0] > 0  # automatic collections still trigger
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
