"""MLflow model directories: flavours and loader modules are checked against an allowlist,
and custom code that ``mlflow.pyfunc.load_model`` would import or unpickle (``code/``, a
custom ``loader_module``, a ``python_model`` pickle, ``skops_trusted_types``) is a finding
unless the policy allows that exact code by digest.

Write-ups: MLflow's pyfunc loading (``loader_module`` imported from ``code/``, put on
``sys.path``) and the MLflow model-deserialization CVEs (e.g. CVE-2024-37052..37060: loading
an untrusted MLflow model runs the code it carries).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import ModelScanConfig, scan_model
from tests.core.scan.malicious_corpus import mlflow_attacks, mlflow_sklearn_dir, write_dir

ATTACKS = mlflow_attacks()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_mlflow_custom_code_is_a_finding(name: str, tmp_path: Path) -> None:
    """Each way of carrying load-time code in an MLflow directory fails the scan."""
    result = scan_model(write_dir(ATTACKS[name], tmp_path / name))
    assert result.verdict is Verdict.FAIL, result.findings
    assert any(f["file"] == "MLmodel" for f in result.findings)


@pytest.mark.parametrize("serialization", ["skops", "cloudpickle"])
def test_mlflow_sklearn_directory_passes(serialization: str, tmp_path: Path) -> None:
    """A directory as mlflow.sklearn.save_model writes it passes (skops or cloudpickle)."""
    result = scan_model(write_dir(mlflow_sklearn_dir(serialization), tmp_path / "m"))
    assert result.verdict is Verdict.PASS, result.findings


def test_custom_code_allowed_by_its_digest_only(tmp_path: Path) -> None:
    """The digest named in the finding allows exactly that code; changed code fails again."""
    files = ATTACKS["mlflow_custom_loader_module_with_code"]
    result = scan_model(write_dir(files, tmp_path / "a"))
    digest = re.search(r"allowed_code_digests: \[(\w{64})\]", str(result.findings)).group(1)
    allowed = ModelScanConfig(allowed_code_digests=(digest,))
    assert scan_model(write_dir(files, tmp_path / "b"), allowed).verdict is Verdict.PASS
    changed = {**files, "code/evil_loader.py": files["code/evil_loader.py"] + b"# more\n"}
    assert scan_model(write_dir(changed, tmp_path / "c"), allowed).verdict is Verdict.FAIL
