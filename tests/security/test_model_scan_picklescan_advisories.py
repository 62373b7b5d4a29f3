"""Denylist bypasses from the picklescan advisories: callables that no denylist listed at the
time. With deny by construction each one is a finding because it is not an allowlisted class
or reconstructor, whether or not our denylist knows it; none loads under ``safe_load``.

Advisories: GHSA-vvpj-8cmc-gx39 (``pkgutil.resolve_name``), GHSA-xp4f-hrf8-rxw7
(``ensurepip._run_pip``), GHSA-v7x6-rv5q-mhwc (``timeit.timeit``), CVE-2025-1716 (``pip.main``),
GHSA-955r-x9j8-7rhh and GHSA-46h3-79wf-xr6c (``_operator`` helpers), mmaitre314/picklescan#74
(``importlib.import_module``, ``marshal.loads``), and the other unlisted standard-library
entry points fixed in picklescan's 2025 batches (mmaitre314/picklescan#50, #53).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops_provider.core.errors import UnsafeModelError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import ModelScanConfig, scan_model
from mlsecops_provider.core.scan.safe_load import safe_loads
from tests.core.scan.malicious_corpus import CMD, P2, STOP, call, glob, ustr

BYPASSES = [
    ("pkgutil", "resolve_name"), ("ensurepip", "_run_pip"), ("timeit", "timeit"),
    ("pip", "main"), ("_operator", "attrgetter"), ("_operator", "methodcaller"),
    ("importlib", "import_module"), ("marshal", "loads"), ("uuid", "_get_command_stdout"),
    ("_pyrepl.pager", "pipe_pager"), ("pydoc", "pipepager"), ("idlelib.pyshell", "main"),
    ("lib2to3.pgen2.pgen", "generate_grammar"), ("distutils.file_util", "write_file"),
    ("venv", "create"), ("trace", "Trace"), ("bdb", "Bdb"), ("code", "InteractiveInterpreter"),
    ("asyncio.unix_events", "_UnixSubprocessTransport"), ("_io", "FileIO"),
    ("ctypes", "CDLL"), ("torch.utils.bottleneck.__main__", "run_cprofile"),
    ("numpy.f2py.crackfortran", "myeval"), ("numpy.testing._private.utils", "runstring"),
    ("platform", "popen"), ("zipimport", "zipimporter"), ("logging.config", "listen"),
    ("cgitb", "lookup"), ("sqlite3", "connect"), ("shelve", "open"), ("webbrowser", "open"),
]  # fmt: skip


def _payload(module: str, name: str) -> bytes:
    return P2 + call(glob(module, name), ustr(CMD)) + STOP


@pytest.mark.parametrize(("module", "name"), BYPASSES, ids=[".".join(b) for b in BYPASSES])
def test_unlisted_callable_is_a_finding(module: str, name: str, tmp_path: Path) -> None:
    """The scan fails (modelscan off: our verdict alone) and safe_load refuses it."""
    path = tmp_path / "model.pkl"
    path.write_bytes(_payload(module, name))
    result = scan_model(path, ModelScanConfig(use_modelscan=False))
    assert result.verdict is Verdict.FAIL, result.findings
    with pytest.raises(UnsafeModelError):
        safe_loads(_payload(module, name), "model.pkl")
