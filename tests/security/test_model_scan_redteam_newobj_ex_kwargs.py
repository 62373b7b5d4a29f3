"""Red team: ``builtins.getattr`` smuggled as a keyword argument of NEWOBJ_EX.

Our scanner allows ``builtins.getattr`` only as a classmethod reconstructor consumed at once
and flags it wherever else it is passed or kept; NEWOBJ_EX's keyword arguments were dropped
unread, so ``cls.__new__(cls, x=getattr)`` passed our scanner (modelscan flags every getattr,
so the merged gate failed, but ours alone did not; with ``use_modelscan: false`` it passed).

Write-ups: promptfoo's ModelAudit disclosure of a fickling opcode-handler bug (a call
vanishes from the analysis when its result is POPped) and picklescan GHSA-9gvj-pp9x-gcfr
("pickle parsing logic flaw"): a value the parser reads and then discards unchecked.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest

from mlsecops_provider.core.errors import UnsafeModelError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import ModelScanConfig, scan_model
from mlsecops_provider.core.scan.pickle.allowlist import Allowlist
from mlsecops_provider.core.scan.pickle.restricted import restricted_unpickler
from mlsecops_provider.core.scan.safe_load import safe_loads
from tests.core.scan.malicious_corpus import STOP, glob, ustr


def newobj_ex_getattr_kwarg() -> bytes:
    kwargs = b"}" + ustr("x") + glob("builtins", "getattr") + b"s"
    return b"\x80\x04" + glob("collections", "OrderedDict") + b")" + kwargs + b"\x92" + STOP


def test_getattr_keyword_fails_our_scanner_alone(tmp_path: Path) -> None:
    """Without modelscan our scanner fails it too, with a critical finding."""
    path = tmp_path / "model.pkl"
    path.write_bytes(newobj_ex_getattr_kwarg())
    result = scan_model(path, ModelScanConfig(use_modelscan=False))
    assert result.verdict is Verdict.FAIL
    assert any(f["severity"] == "critical" for f in result.findings)


def test_getattr_keyword_is_refused_at_load() -> None:
    """safe_load refuses it; the load-time unpickler alone builds it harmlessly, since the
    getattr it hands out reads nothing but the vetted classmethod reconstructors."""
    data = newobj_ex_getattr_kwarg()
    with pytest.raises(UnsafeModelError):
        safe_loads(data, "model.pkl", ModelScanConfig(use_modelscan=False))
    unpickler = restricted_unpickler(pickle.Unpickler, Allowlist())(io.BytesIO(data))
    vetted = unpickler.find_class("builtins", "getattr")
    with pytest.raises(pickle.UnpicklingError):
        vetted(io.BytesIO, "__class__")
