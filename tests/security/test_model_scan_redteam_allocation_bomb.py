"""Red team: memory bombs built only of allowed constructors.

``bytearray(10**11)`` or ``list(range(10**11))`` use nothing but allowlisted builtins, hold
a few bytes in the file and exhaust memory the moment the unpickler calls them (the same
class as decompression bombs: the size comes from a number, not from data). Before the fix
both passed the gate and ``safe_load`` would have started allocating; neither is ever
loaded here.

Reference: the ``pickle`` documentation's warning on untrusted data, and issue 16's bad-input
rule (oversized inputs stay refusals within the policy's limits), applied to sizes that come
from a number instead of from compressed data.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest

from mlsecops_provider.core.errors import UnsafeModelError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import scan_model
from mlsecops_provider.core.scan.pickle.allowlist import Allowlist
from mlsecops_provider.core.scan.pickle.restricted import restricted_unpickler
from mlsecops_provider.core.scan.safe_load import safe_loads
from tests.core.scan.malicious_corpus import P2, STOP, call, glob

HUGE = b"\x8a\x05" + (10**11).to_bytes(5, "little")  # LONG1 100_000_000_000


def bombs() -> dict[str, bytes]:
    return {
        "bytearray_of_a_number": P2 + call(glob("builtins", "bytearray"), HUGE) + STOP,
        "bytes_of_a_number": P2 + call(glob("builtins", "bytes"), HUGE) + STOP,
        "list_of_a_huge_range": (
            P2 + call(glob("builtins", "list"), call(glob("builtins", "range"), HUGE)) + STOP
        ),
    }


@pytest.mark.parametrize("name", sorted(bombs()))
def test_allocation_bomb_is_refused(name: str, tmp_path: Path) -> None:
    """The gate fails it; safe_load and the load-time unpickler refuse before allocating."""
    data = bombs()[name]
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    assert scan_model(path).verdict is Verdict.FAIL
    with pytest.raises(UnsafeModelError):
        safe_loads(data, "model.pkl")
    with pytest.raises(pickle.UnpicklingError):
        restricted_unpickler(pickle.Unpickler, Allowlist())(io.BytesIO(data)).load()


def test_small_buffers_and_ranges_still_load() -> None:
    """No false positive: the ranges and buffers real estimators keep load."""
    value = {"grid": range(1, 50, 2), "buf": bytearray(b"abc"), "raw": bytes(16)}
    data = pickle.dumps(value, 2)
    assert safe_loads(data, "model.pkl") == value
