"""Red team: INST, NEWOBJ and NEWOBJ_EX giving a reconstructor a computed callable.

``INST`` calls the class ``find_class`` returned with the marked items, NEWOBJ(_EX) calls
``cls.__new__(cls, *args)``; the load-time unpickler vetted the callable arguments of
reconstructors (``functools.partial``, ...) for REDUCE and OBJ only (NEWOBJ was checked with
no arguments), so ``partial(<object built while unpickling>)`` and ``bytes.__new__(bytes,
<huge>)`` were built at load time (the gate did refuse them). Now every call opcode passes
its real arguments to one check.

Write-ups: Trail of Bits fickling docs on INST/OBJ as call opcodes, and picklescan
GHSA-9gvj-pp9x-gcfr ("pickle parsing logic flaw": a check applied to one call opcode and
not to another).
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
from tests.core.scan.malicious_corpus import P2, STOP, call, glob, tup


def computed_callable_calls() -> dict[str, bytes]:
    computed = call(glob("functools", "partial"), glob("builtins", "int"))
    partial = glob("functools", "partial")
    return {
        "inst_partial": b"(" + computed + b"ifunctools\npartial\n" + STOP,
        "newobj_partial": P2 + partial + tup(computed) + b"\x81" + STOP,
        "newobj_ex_partial": b"\x80\x04" + partial + tup(computed) + b"}\x92" + STOP,
    }


@pytest.mark.parametrize("name", sorted(computed_callable_calls()))
def test_reconstructor_with_computed_callable_is_refused(name: str, tmp_path: Path) -> None:
    """The gate fails it; safe_load and the load-time unpickler alone refuse it."""
    data = computed_callable_calls()[name]
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    assert scan_model(path).verdict is Verdict.FAIL
    with pytest.raises(UnsafeModelError):
        safe_loads(data, "model.pkl")
    with pytest.raises(pickle.UnpicklingError):
        restricted_unpickler(pickle.Unpickler, Allowlist())(io.BytesIO(data)).load()


def test_protocol0_inst_of_allowed_class_still_loads() -> None:
    """No false positive: protocol 0 INST of an allowed class with literals loads."""
    data = b"(S'ab'\nicollections\nCounter\n."
    loaded = restricted_unpickler(pickle.Unpickler, Allowlist())(io.BytesIO(data)).load()
    assert dict(loaded) == {"a": 1, "b": 1}
