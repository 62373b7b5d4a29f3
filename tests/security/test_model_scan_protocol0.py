"""Protocol 0/1 pickles are recognised by their opcodes whatever the scanner host has installed
(a Windows-only module, a library that is not installed, a module of another Python), and
Python 2 names are mapped as ``pickle`` maps them, so benign protocol-0 models pass.

Write-up: picklescan GHSA-9gvj-pp9x-gcfr ("pickle parsing logic flaw leads to malicious pickle
file bypass", mmaitre314/picklescan#46): a scanner that parses differently from the unpickler
lets the payload through; here the lenient text-or-pickle decision was that difference.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import scan_model
from tests.core.scan.malicious_corpus import benign_corpus, protocol0_foreign_module, write

FOREIGN = protocol0_foreign_module()


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_text_protocol_pickle_of_a_foreign_module_is_a_pickle(name: str, tmp_path: Path) -> None:
    """Not importable here still means "a pickle that calls something not allowed"."""
    result = scan_model(write(FOREIGN, name, tmp_path))
    assert result.verdict is Verdict.FAIL, result.findings
    assert result.metrics["formats"]["model.pkl"] == "pickle"


@pytest.mark.parametrize("protocol", [0, 1])
def test_benign_python2_named_sklearn_pickle_passes(protocol: int, tmp_path: Path) -> None:
    """copy_reg._reconstructor and __builtin__.object (Python 2 names) are mapped, not refused."""
    corpus = benign_corpus()
    data = corpus[f"sklearn_pickle_p{protocol}"][1]
    assert b"copy_reg\n_reconstructor" in data and b"__builtin__" in data
    result = scan_model(write(corpus, f"sklearn_pickle_p{protocol}", tmp_path))
    assert result.verdict is Verdict.PASS, result.findings


def test_text_that_merely_starts_like_a_pickle_is_text(tmp_path: Path) -> None:
    """Prose starting with a pickle opcode byte is not reported (no call, no STOP)."""
    path = tmp_path / "NOTES"
    path.write_text("cats\nand dogs\nare (mostly) friends. (really)\n")
    assert scan_model(path).verdict is Verdict.PASS
    evil = tmp_path / "evil.txt"
    evil.write_bytes(pickle.dumps(print, 0).replace(b"print", b"exec"))
    assert scan_model(evil).verdict is Verdict.FAIL
