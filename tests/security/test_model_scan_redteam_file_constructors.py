"""Red team: model classes whose constructor opens a path, called by the pickle.

The allowlist admits the classes of xgboost, lightgbm and catboost (their pickles rebuild a
``Booster`` with ``__new__`` and BUILD). Calling one instead runs its constructor:
``xgboost.Booster(model_file=...)``, ``DMatrix("data?format=libsvm")``,
``lightgbm.Booster(model_file=...)`` read any local file, so a pickle could swap in another
model found on the host. REDUCE, INST and OBJ of those classes (and
``copyreg._reconstructor`` with one as base and a state, which runs ``base.__init__``) are
findings; NEWOBJ (``__new__`` only) and the pickles the libraries write still pass.

Write-up: "The Art of Hide and Seek: Making Pickle-Based Model Supply Chain Poisoning
Stealthy Again" (Liu et al., 2025; its risky-function surface: gadgets inside the libraries
scanners trust).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops_provider.core.errors import UnsafeModelError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import ModelScanConfig, scan_model
from mlsecops_provider.core.scan.pickle.gadgets import constructor_problem
from mlsecops_provider.core.scan.safe_load import safe_loads
from tests.core.scan.malicious_corpus import P2, STOP, call, glob, tup, ustr

PATH = ustr("/etc/other-model.json")


def constructor_calls() -> dict[str, bytes]:
    booster = glob("xgboost.core", "Booster")
    return {
        "xgboost_booster_reduce": P2 + call(booster, b"N", b"N", PATH) + STOP,
        "xgboost_dmatrix_inst": b"(" + PATH + b"ixgboost\nDMatrix\n" + STOP,
        "lightgbm_booster_obj": b"(" + glob("lightgbm.basic", "Booster") + b"N" + b"o" + STOP,
        "reconstructor_runs_booster_init": P2 + call(
            glob("copyreg", "_reconstructor"), booster, booster, PATH
        ) + STOP,
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(constructor_calls()))
def test_file_opening_constructor_call_is_refused(name: str, tmp_path: Path) -> None:
    """The gate (our scanner alone too) fails it, and safe_load refuses it."""
    data = constructor_calls()[name]
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    assert scan_model(path, ModelScanConfig(use_modelscan=False)).verdict is Verdict.FAIL
    assert scan_model(path).verdict is Verdict.FAIL
    with pytest.raises(UnsafeModelError):
        safe_loads(data, "model.pkl")


def test_rebuilding_a_booster_the_library_way_is_not_a_finding(tmp_path: Path) -> None:
    """No false positive: NEWOBJ + BUILD and ``_reconstructor(Booster, object, None)`` (how
    xgboost/lightgbm pickles rebuild a Booster) run no constructor and pass our scanner."""
    booster = glob("xgboost.core", "Booster")
    state = b"}" + ustr("handle") + b"C\x03raw" + b"s" + b"b"
    rebuilt = {
        "newobj": P2 + booster + tup() + b"\x81" + state + STOP,
        "reconstructor": P2 + call(glob("copyreg", "_reconstructor"), booster,
                                   glob("builtins", "object"), b"N") + state + STOP,
    }  # fmt: skip
    for name, data in rebuilt.items():
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(data)
        result = scan_model(path, ModelScanConfig(use_modelscan=False))
        assert result.verdict is Verdict.PASS, (name, result.findings)
    assert constructor_problem("xgboost.core.Booster", (), initialises=False) is None
