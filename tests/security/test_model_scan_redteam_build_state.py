"""Red team: BUILD states that are not the literal dict the checks read.

scipy's distributions ``exec`` their ``_parse_arg_template`` in ``__setstate__``, which does
``self.__dict__.update(state)``: that accepts any mapping (a pandas Series, the result of
``dict(...)``) and any sequence of key/value pairs (a list, a 1-tuple, a frozenset, even a
2-key dict read as a pair), so a state in any of those shapes runs its template while a check
that reads only literal dicts sees nothing. Before the fix every case below passed the gate
and ran code under ``safe_load``. Likewise ``functools.partial.__setstate__`` and a
defaultdict's slot state replace the callable a reconstructor was vetted with.

Write-ups: Trail of Bits, "Never a dill moment: Exploiting machine learning pickle files"
(fickling: BUILD is a call of ``__setstate__`` with a state the attacker writes), JFrog,
"Data scientists targeted by malicious Hugging Face ML models with silent backdoor", and
picklescan GHSA-vvpj-8cmc-gx39 / mmaitre314/picklescan#66 (one unlisted route around a
check reaches everything the check was meant to stop).
"""

from __future__ import annotations

import collections
import functools
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
from tests.core.scan.malicious_corpus import CMD, EXEC_IN_SETSTATE, P2, STOP, call, glob, tup, ustr

CODE = f"import os\nos.system({CMD!r})\n"
KEY = "_parse_arg_template"


def _dist() -> bytes:
    return P2 + call(glob("copyreg", "_reconstructor"), glob(*EXEC_IN_SETSTATE),
                     glob("builtins", "object"), b"N")  # fmt: skip


def _pairs() -> bytes:
    return b"]" + b"(" + tup(ustr(KEY), ustr(CODE)) + b"e"


def _series_state() -> bytes:
    import pandas as pd

    body = pickle.dumps(pd.Series([CODE], index=[KEY], dtype=object), 2)
    return body[2:-1]  # the Series' opcodes without PROTO and STOP


def build_state_attacks() -> dict[str, bytes]:
    """One pickle per shape of a BUILD state that ``__dict__.update`` turns into a template."""
    two_key_dict = b"]" + b"}" + ustr(KEY) + b"N" + b"s" + ustr(CODE) + b"N" + b"s" + b"a"
    computed_key = call(glob("builtins", "str"), ustr(KEY))
    states = {
        "state_list_of_pairs": _pairs(),
        "state_tuple_of_pairs": tup(tup(ustr(KEY), ustr(CODE))),
        # dict.update has set the first pair when the second item makes it raise
        "state_pairs_then_invalid_item": tup(tup(ustr(KEY), ustr(CODE)), b"K\x01"),
        "state_dict_read_as_pair": two_key_dict,  # dict.update([{KEY: 0, CODE: 0}])
        "state_computed_key": b"}" + computed_key + ustr(CODE) + b"s",
        "state_dict_call": call(glob("builtins", "dict"), _pairs()),
        "state_frozenset_of_pairs": call(glob("builtins", "frozenset"), _pairs()),
        "state_pandas_series": _series_state(),
    }
    return {name: _dist() + state + b"b" + STOP for name, state in states.items()}


def callable_state_attacks() -> dict[str, bytes]:
    """Reconstructors vetted with a global whose BUILD state swaps in a computed callable."""
    computed = call(glob("functools", "partial"), glob("builtins", "int"))
    partial = call(glob("functools", "partial"), glob("builtins", "int"))
    factory = b"}" + ustr("default_factory") + computed + b"s"
    return {
        "partial_state_swaps_func": P2 + partial + tup(computed, b")", b"N", b"N") + b"b" + STOP,
        "defaultdict_slotstate_factory": (
            P2 + call(glob("collections", "defaultdict"), b"N") + tup(b"N", factory) + b"b" + STOP
        ),
    }


def _all() -> dict[str, bytes]:
    return {**build_state_attacks(), **callable_state_attacks()}


def _scan(data: bytes, tmp_path: Path) -> Verdict:
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    return scan_model(path).verdict


@pytest.mark.parametrize("name", sorted(_all()))
def test_build_state_shape_is_refused_by_the_gate(name: str, tmp_path: Path) -> None:
    """The gate fails every BUILD-state shape (it passed all of them before the fix)."""
    assert _scan(_all()[name], tmp_path) is Verdict.FAIL


@pytest.mark.parametrize("name", sorted(_all()))
def test_build_state_shape_is_refused_at_load(name: str) -> None:
    """safe_load refuses, and so does the load-time unpickler on its own (a scan miss)."""
    data = _all()[name]
    with pytest.raises(UnsafeModelError):
        safe_loads(data, "model.pkl")
    with pytest.raises(pickle.UnpicklingError):
        restricted_unpickler(pickle.Unpickler, Allowlist())(io.BytesIO(data)).load()


def test_real_distributions_partials_and_defaultdicts_still_pass(tmp_path: Path) -> None:
    """No false positive: real scipy distributions (frozen too), partials of allowed
    functions and defaultdicts of allowed factories pass the gate and load."""
    import numpy as np
    from scipy import stats

    value = {
        "dist": stats.norm, "frozen": stats.gamma(2.0, loc=1.0),
        "partial": functools.partial(np.mean, axis=0),
        "counts": collections.defaultdict(int, {"a": 1}),
        "structured": np.zeros(3, dtype=[("a", "<f4"), ("b", "<i8")]),
    }  # fmt: skip
    for protocol in (2, 4, 5):
        data = pickle.dumps(value, protocol)
        assert _scan(data, tmp_path) is Verdict.PASS
        loaded = safe_loads(data, "model.pkl")
        assert loaded["frozen"].mean() == pytest.approx(3.0)
        assert loaded["partial"](np.ones((2, 2))).tolist() == [1.0, 1.0]


def test_protocol2_joblib_with_datetime_units_passes(tmp_path: Path) -> None:
    """No false positive: protocol 2 writes the ``b"ns"`` unit of a datetime64 dtype state
    as ``_codecs.encode("ns", "latin1")``; a joblib DataFrame with timestamps passes."""
    import joblib
    import pandas as pd

    frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=5, tz="UTC"), "x": range(5)})
    path = tmp_path / "model.joblib"
    joblib.dump(frame, path, protocol=2)
    assert scan_model(path).verdict is Verdict.PASS
    assert safe_loads(path.read_bytes(), "model.joblib")["x"].tolist() == [0, 1, 2, 3, 4]
