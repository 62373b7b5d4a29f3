"""Library classes are judged from source without importing the libraries (a cold scan in a
fresh task process), and the verdicts agree with inspecting the imported objects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.core.scan.malicious_corpus import benign_corpus, gadget_chain_pickle

SCRIPT = """
import sys
from pathlib import Path
from mlsecops_provider.core.scan.content import ContentScanner, scan_content
from mlsecops_provider.core.scan.pickle.allowlist import Allowlist
good = scan_content(Path(sys.argv[1]), ContentScanner(), False)
evil = scan_content(Path(sys.argv[2]), ContentScanner(), False)
allow = Allowlist()
hgb = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting"
print(len(good.findings), len(evil.findings) >= 3,
      allow.allows(hgb, "suppress"), allow.allows("pandas", "DataFrame"),
      allow.allows("scipy.sparse._csr", "csr_matrix"),
      any(m.startswith(("sklearn.ensemble", "pandas", "scipy.sparse")) for m in sys.modules))
"""


def test_cold_scan_imports_no_model_library(tmp_path: Path) -> None:
    """A fresh process scans a scikit-learn pipeline clean and the gadget chain dirty, knows
    pandas.DataFrame and csr_matrix are classes and a re-exported contextlib.suppress is not,
    and has
    imported neither scikit-learn's estimators nor pandas nor scipy.sparse."""
    good, evil = tmp_path / "good.pkl", tmp_path / "evil.pkl"
    good.write_bytes(benign_corpus()["sklearn_pickle_p4"][1])
    evil.write_bytes(gadget_chain_pickle())
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(good), str(evil)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert result.stdout.split() == ["0", "True", "False", "True", "True", "False"]
