"""modelscan runs without error lines on numpy 2.4; fickling is an opt-in further opinion."""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import ModelScanConfig, scan_model
from tests.core.scan.malicious_corpus import benign_corpus, malicious_corpus, write


def test_npy_and_npz_scan_without_modelscan_error_lines(tmp_path: Path, caplog: Any) -> None:
    """modelscan's .npy scanner (broken on numpy 2.4) is off; our scanner covers the files."""
    np.save(tmp_path / "a.npy", np.arange(5.0))
    np.savez(tmp_path / "b.npz", a=np.arange(3), b=np.ones(2))
    with caplog.at_level(logging.INFO):
        results = [scan_model(tmp_path / name) for name in ("a.npy", "b.npz")]
    assert all(r.verdict is Verdict.PASS for r in results), [r.findings for r in results]
    assert all(r.metrics["modelscan_gaps_covered"] >= 1 for r in results)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_npz_of_an_object_array_still_fails_without_modelscan_npy(tmp_path: Path) -> None:
    """Disabling modelscan's .npy scanner loses nothing: ours scans the object pickle."""
    result = scan_model(write(malicious_corpus(), "npz_object_array", tmp_path))
    assert result.verdict is Verdict.FAIL


def test_fickling_adds_its_overt_verdicts_only(tmp_path: Path) -> None:
    """With use_fickling, an overtly malicious pickle gets a fickling finding as well, and
    benign scikit-learn pickles (which fickling calls likely unsafe) still pass."""
    config = ModelScanConfig(use_fickling=True)
    evil = scan_model(write(malicious_corpus(), "os_system_p2", tmp_path), config)
    assert any(f["scanner"] == "fickling" for f in evil.findings)
    for protocol in range(6):
        name = f"sklearn_pickle_p{protocol}"
        result = scan_model(write(benign_corpus(), name, tmp_path / name), config)
        assert result.verdict is Verdict.PASS, result.findings


def test_zip_of_npy_is_not_an_error(tmp_path: Path) -> None:
    """A plain zip of .npy members (np.savez_compressed) passes."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, w=np.arange(10))
    (tmp_path / "w.npz").write_bytes(buffer.getvalue())
    assert zipfile.is_zipfile(tmp_path / "w.npz")
    assert scan_model(tmp_path / "w.npz").verdict is Verdict.PASS
