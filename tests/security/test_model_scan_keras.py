"""Keras configs are checked against an allowlist of standard Keras objects: layers that read
local files or URLs, load external models, run other frameworks' code, or Keras functions used
as layers are findings; a model of standard layers passes.

Write-ups: CVE-2025-1550 (config names any module), CVE-2025-8747 and CVE-2025-9906 (Keras
functions such as ``keras.utils.get_file`` and ``keras.models.load_model`` reached from a
config, io-no/CVE-Reports#5), keras-team/keras#21751 and #23050 (``StringLookup`` vocabulary
read from a file path; ``TFSMLayer`` loading an external SavedModel), and Keras'
``TorchModuleWrapper`` (``torch.load`` of an embedded payload).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import scan_model
from tests.core.scan.malicious_corpus import benign_corpus, keras_attacks, write

ATTACKS = keras_attacks()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_keras_technique_is_a_finding(name: str, tmp_path: Path) -> None:
    """Each bad object inside an otherwise standard .keras archive fails the scan."""
    result = scan_model(write(ATTACKS, name, tmp_path))
    assert result.verdict is Verdict.FAIL, result.findings
    assert any(f["file"].startswith("model.keras:config.json") for f in result.findings)


def test_torch_module_wrapper_payload_is_decoded_and_scanned(tmp_path: Path) -> None:
    """The torch.save bytes inside the config are scanned as a torch checkpoint."""
    result = scan_model(write(ATTACKS, "keras_torch_module_wrapper", tmp_path))
    inner = [f for f in result.findings if "#TorchModuleWrapper" in f["file"]]
    assert inner and inner[0]["global"] == "os.system"


def test_keras_model_of_standard_layers_passes(tmp_path: Path) -> None:
    """Dense, Conv1D, BatchNormalization, Dropout, StringLookup with an inline vocabulary,
    initializers, regularizers, an activation function and an optimizer: no finding."""
    result = scan_model(write(benign_corpus(), "keras_standard_layers", tmp_path))
    assert result.verdict is Verdict.PASS, result.findings
    assert result.findings == []
