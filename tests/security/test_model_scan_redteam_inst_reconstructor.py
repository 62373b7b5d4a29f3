"""Red team: INST (protocol 0) calling a reconstructor with a computed callable.

``INST`` resolves its class through ``find_class`` and then calls it with the marked items;
the load-time unpickler vetted the callable arguments of reconstructors
(``functools.partial``, ``copyreg._reconstructor``, ...) for REDUCE, NEWOBJ and OBJ but not
for INST, so ``partial(<object built while unpickling>)`` was built at load time (the gate
did refuse it). Now INST and OBJ share one check.

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
from tests.core.scan.malicious_corpus import STOP, call, glob


def inst_partial_of_computed() -> bytes:
    computed = call(glob("functools", "partial"), glob("builtins", "int"))
    return b"(" + computed + b"ifunctools\npartial\n" + STOP


def test_inst_reconstructor_with_computed_callable_is_refused(tmp_path: Path) -> None:
    """The gate fails it; safe_load and the load-time unpickler alone refuse it."""
    data = inst_partial_of_computed()
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
