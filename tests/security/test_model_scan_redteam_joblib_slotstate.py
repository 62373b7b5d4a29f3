"""Red team: a joblib object array whose wrapper gets its dtype from a slot state.

``NumpyArrayWrapper`` has no ``__setstate__``, so BUILD also accepts ``(None, slotstate)``
and sets the dtype by ``setattr``. The load-time unpickler only recognised an object array
when the state was a dict holding the dtype, so for this shape joblib's own reader took the
nested pickle, with our ``find_class`` but none of our call and BUILD checks: a scipy
distribution's template ran under the restricted unpickler (the gate did refuse the file; the
load-time half alone did not). Now the wrapper is judged by the dtype it has after BUILD.

Write-ups: Protect AI's modelscan documentation on model serialization attacks (joblib
object arrays are a second pickle stream), and Trail of Bits' fickling write-up "Never a
dill moment" (BUILD runs ``__setstate__``/``setattr`` with a state the attacker writes).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from mlsecops_provider.core.errors import UnsafeModelError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import scan_model
from mlsecops_provider.core.scan.pickle.allowlist import Allowlist
from mlsecops_provider.core.scan.safe_load import _load_pickle, safe_loads
from tests.core.scan.malicious_corpus import P2, STOP, call, glob, scipy_template_exec, tup, ustr


def _field(name: str, value: bytes) -> bytes:
    return ustr(name) + value + b"s"


def joblib_slotstate_object_array() -> bytes:
    """A wrapper whose state is ``(None, {..., "dtype": dtype("O")})``, then a nested pickle
    of a scipy distribution with an executed template (it only ever runs ``echo pwned``)."""
    dtype = call(glob("numpy", "dtype"), ustr("O"), b"\x89", b"\x88")
    slots = b"}" + b"".join([
        _field("subclass", glob("numpy", "ndarray")), _field("shape", tup(b"K\x01")),
        _field("order", ustr("C")), _field("dtype", dtype), _field("allow_mmap", b"\x89"),
    ])  # fmt: skip
    wrapper = glob("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81"
    return P2 + wrapper + tup(b"N", slots) + b"b" + P2 + scipy_template_exec() + STOP + STOP


def test_joblib_slotstate_object_array_is_refused_by_the_gate(tmp_path: Path) -> None:
    """The gate fails it (the wrapper state is not the dict joblib writes)."""
    path = tmp_path / "model.joblib"
    path.write_bytes(joblib_slotstate_object_array())
    assert scan_model(path).verdict is Verdict.FAIL


def test_joblib_slotstate_object_array_is_refused_at_load() -> None:
    """safe_load refuses, and the load-time unpickler alone refuses it too (before the fix
    it ran the nested pickle through joblib's reader and executed the template)."""
    data = joblib_slotstate_object_array()
    with pytest.raises(UnsafeModelError):
        safe_loads(data, "model.joblib")
    with pytest.raises(pickle.UnpicklingError):
        _load_pickle(data, Allowlist())


def test_real_joblib_object_and_numeric_arrays_still_load(tmp_path: Path) -> None:
    """No false positive: joblib files with numeric and object arrays pass and load."""
    import joblib
    import numpy as np

    value = {"w": np.arange(6.0).reshape(2, 3), "o": np.array(["a", 1, None], dtype=object)}
    path = tmp_path / "model.joblib"
    joblib.dump(value, path)
    assert scan_model(path).verdict is Verdict.PASS
    loaded = safe_loads(path.read_bytes(), "model.joblib")
    assert loaded["w"].tolist() == value["w"].tolist() and loaded["o"].tolist() == ["a", 1, None]
