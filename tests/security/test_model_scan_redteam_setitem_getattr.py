"""Red team: ``builtins.getattr`` handed to an object's ``__setitem__`` by SETITEM.

SETITEM/SETITEMS/APPEND(S) on anything but a plain dict or list call the object's
``__setitem__``/``append``/``extend``, and pandas' ``DataFrame.__setitem__`` calls a
callable key with the frame (``apply_if_callable``). A getattr passed that way was dropped
unread by our scanner, so the pickle passed it (plain ``pickle.load`` does call
``getattr(frame)``). It is now a critical finding, like getattr passed to any call.

Write-ups: Trail of Bits' fickling write-up "Never a dill moment" (SETITEMS and APPENDS
call methods of the object being built), picklescan GHSA-9gvj-pp9x-gcfr ("pickle parsing
logic flaw").
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from mlsecops_provider.core.errors import UnsafeModelError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import ModelScanConfig, scan_model
from mlsecops_provider.core.scan.safe_load import safe_loads
from tests.core.scan.malicious_corpus import P2, STOP, call, glob


def dataframe_setitem_getattr() -> bytes:
    frame = call(glob("pandas.core.frame", "DataFrame"))
    return P2 + frame + glob("builtins", "getattr") + b"K\x01" + b"s" + b"0" + b"N" + STOP


def test_plain_pickle_calls_the_key() -> None:
    """It is a real call: plain pickle.load reaches getattr(frame) and fails there."""
    with pytest.raises(TypeError, match="getattr"):
        pickle.loads(dataframe_setitem_getattr())  # noqa: S301 - getattr with one argument


def test_getattr_as_setitem_key_fails_our_scanner(tmp_path: Path) -> None:
    """Our scanner alone fails it (a critical finding); safe_load refuses it."""
    path = tmp_path / "model.pkl"
    path.write_bytes(dataframe_setitem_getattr())
    result = scan_model(path, ModelScanConfig(use_modelscan=False))
    assert result.verdict is Verdict.FAIL
    with pytest.raises(UnsafeModelError):
        safe_loads(dataframe_setitem_getattr(), "model.pkl")
