"""joblib arrays are sized from the dtype numpy really builds (its BUILD state included): an
object array cannot hide its nested pickle as raw bytes by declaring a void dtype code.

Write-up: JFrog's "unveiling 3 zero-day vulnerabilities in picklescan" (GHSA-gx77-x2pv-48v7),
where scanner and loader disagree about what the bytes are; here joblib's reader and the
scanner disagree about the array's dtype.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mlsecops_provider.core.errors import UnsafeModelError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.formats import Blob
from mlsecops_provider.core.scan.gate import scan_model
from mlsecops_provider.core.scan.pickle.scanner import scan_pickles
from mlsecops_provider.core.scan.safe_load import safe_loads
from tests.core.scan.malicious_corpus import (
    JOBLIB_COMPRESSORS,
    benign_corpus,
    joblib_dtype_build_object_array,
    malicious_corpus,
    write,
)


def test_object_dtype_from_build_state_is_unpickled_and_scanned(tmp_path: Path) -> None:
    """The nested pickle behind a 'V8' wrapper whose fields hold 'O' is found."""
    report = scan_pickles(Blob(joblib_dtype_build_object_array()), "model.joblib")
    assert "os.system" in {f.global_name for f in report.findings}
    result = scan_model(write(malicious_corpus(), "joblib_dtype_build_object_array", tmp_path))
    assert result.verdict is Verdict.FAIL
    with pytest.raises(UnsafeModelError):
        safe_loads(joblib_dtype_build_object_array(), "model.joblib")


def test_real_structured_and_object_arrays_pass_and_load() -> None:
    """joblib's own structured and object arrays are sized right (no break, no finding)."""
    import joblib
    import numpy as np

    value = {
        "rec": np.zeros(5, dtype=[("a", "<f8"), ("b", "<i4", (2,))]),
        "obj": np.array(["x", 1, None], dtype=object),
        "big": np.arange(3000, dtype="<f4"),
    }
    buffer = io.BytesIO()
    joblib.dump(value, buffer)
    report = scan_pickles(Blob(buffer.getvalue()), "m.joblib")
    assert report.complete and report.findings == []
    loaded = safe_loads(buffer.getvalue(), "m.joblib")
    assert loaded["obj"].tolist() == ["x", 1, None] and loaded["rec"].dtype == value["rec"].dtype


@pytest.mark.parametrize("compressor", JOBLIB_COMPRESSORS)
def test_joblib_with_every_compressor_passes(compressor: str, tmp_path: Path) -> None:
    """Benign joblib models pass whichever compressor wrote them."""
    corpus = benign_corpus()
    result = scan_model(write(corpus, f"sklearn_joblib_{compressor}", tmp_path))
    assert result.verdict is Verdict.PASS, result.findings
