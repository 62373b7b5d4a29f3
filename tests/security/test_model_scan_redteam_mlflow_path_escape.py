"""Red team: an MLflow model whose MLmodel points its data outside the model directory.

``mlflow.pyfunc.load_model`` joins ``python_function.data`` (and ``mlflow.sklearn`` its
``pickled_model``) to the model directory with ``os.path.join``, so an absolute path or a
``..`` path loads a file the gate never scanned. Before the fix a directory holding only a
benign MLmodel passed while ``load_model`` unpickled a sibling file and ran its payload.

Advisories: CVE-2023-1177 and CVE-2023-2780 (MLflow path traversal through model and
artifact paths, reported through Protect AI's huntr).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import scan_model
from tests.core.scan.malicious_corpus import mlflow_sklearn_dir, mlmodel, write_dir

SKLEARN = {"pickled_model": "model.pkl", "serialization_format": "pickle",
           "sklearn_version": "1.9.1"}  # fmt: skip


def _escapes(outside: Path) -> dict[str, tuple[dict[str, object], dict[str, object]]]:
    return {
        "pyfunc_data_dotdot": ({"loader_module": "mlflow.sklearn", "data": "../x/model.pkl"},
                               SKLEARN),
        "pyfunc_data_absolute": ({"loader_module": "mlflow.sklearn", "data": str(outside)},
                                 SKLEARN),
        "sklearn_pickled_model_absolute": ({"loader_module": "mlflow.sklearn"},
                                           {**SKLEARN, "pickled_model": str(outside)}),
        "pyfunc_model_path_windows_drive": ({"loader_module": "mlflow.sklearn",
                                             "model_path": "C:\\models\\evil.pkl"}, SKLEARN),
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(_escapes(Path("/tmp/x"))))
def test_mlmodel_path_outside_the_model_fails(name: str, tmp_path: Path) -> None:
    """The gate fails an MLmodel whose flavour paths leave the model directory (the file
    outside, an unscanned pickle, is never read by the gate)."""
    outside = tmp_path / "x" / "model.pkl"
    outside.parent.mkdir()
    outside.write_bytes(pickle.dumps({"stands in for": "a malicious pickle"}, 4))
    pyfunc, sklearn = _escapes(outside)[name]
    files = mlflow_sklearn_dir("pickle")
    files["MLmodel"] = mlmodel(pyfunc, {"sklearn": sklearn})
    result = scan_model(write_dir(files, tmp_path / "model"))
    assert result.verdict is Verdict.FAIL
    assert any("outside the model directory" in f["reason"] for f in result.findings)


def test_mlmodel_paths_inside_the_model_pass(tmp_path: Path) -> None:
    """No false positive: the relative paths mlflow.sklearn.save_model writes pass."""
    result = scan_model(write_dir(mlflow_sklearn_dir("pickle"), tmp_path / "model"))
    assert result.verdict in (Verdict.PASS, Verdict.WARN), result.findings
