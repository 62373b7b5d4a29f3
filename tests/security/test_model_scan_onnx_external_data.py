"""ONNX external data is resolved inside the model directory: data next to the model passes;
a location with ``..``, an absolute path, a symlink out of the directory, a missing file or a
range past its end fails.

Write-ups: CVE-2022-25882 (``..`` in external data locations, onnx/onnx#3991), its bypass
CVE-2024-27318 / GHSA-whh8-fjgc-qp73 (nested ``sub/../../`` traversal, onnx/onnx#5917) and
CVE-2026-27489 (path traversal through a symlink in external data handling).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import scan_model
from mlsecops_provider.core.scan.safe_load import safe_loads
from tests.core.scan.malicious_corpus import onnx_external_model

pytest.importorskip("onnx")


def _model_dir(folder: Path, location: str = "weights.bin", offset: int = 0) -> Path:
    model, weights = onnx_external_model(location, offset)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(model)
    (folder / "weights.bin").write_bytes(weights)
    return folder


def test_external_data_inside_the_directory_passes(tmp_path: Path) -> None:
    """Benign external data: the weights file is accepted as the model's raw tensor data."""
    result = scan_model(_model_dir(tmp_path / "m"))
    assert result.verdict is Verdict.PASS, result.findings
    assert result.metrics["formats"]["weights.bin"] == "onnx_external_data"


@pytest.mark.parametrize(
    "location", ["../secret.bin", "/etc/passwd", "sub/../../x.bin", "C:\\\\Windows\\\\win.ini"]
)
def test_external_data_outside_the_directory_fails(location: str, tmp_path: Path) -> None:
    """Relative escapes and absolute paths are findings."""
    (tmp_path / "secret.bin").write_bytes(bytes(256))
    result = scan_model(_model_dir(tmp_path / "m", location))
    assert result.verdict in (Verdict.FAIL, Verdict.ERROR), result.findings
    assert result.verdict is not Verdict.PASS


def test_external_data_through_a_symlink_out_fails(tmp_path: Path) -> None:
    """A symlink inside the directory that points out of it is not followed."""
    outside = tmp_path / "outside.bin"
    outside.write_bytes(bytes(256))
    folder = _model_dir(tmp_path / "m", "link.bin")
    (folder / "link.bin").symlink_to(outside)
    result = scan_model(folder)
    assert result.verdict is Verdict.FAIL
    assert any("outside the model" in f["reason"] for f in result.findings)


def test_external_data_range_and_missing_file_fail(tmp_path: Path) -> None:
    """An offset past the file's end, or a file that is not there, is not a pass."""
    assert scan_model(_model_dir(tmp_path / "a", offset=4096)).verdict is Verdict.FAIL
    assert scan_model(_model_dir(tmp_path / "b", "gone.bin")).verdict is Verdict.FAIL


def test_external_data_cannot_be_resolved_from_memory() -> None:
    """safe_loads holds bytes only: an external-data model there is an error, never a pass."""
    model, _ = onnx_external_model()
    with pytest.raises(Exception, match="refused|external data"):
        safe_loads(model, "model.onnx")
