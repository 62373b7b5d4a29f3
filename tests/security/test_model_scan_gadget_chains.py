"""Gadget chains through an allowlist: pickles built only of names a package-wide allowlist
admitted (library helpers that import modules, read attributes by name, exec strings, and a
scipy distribution whose ``__setstate__`` execs its state) are caught by the scan and refused
by ``safe_load``, whatever the scan says.

Write-ups: picklescan GHSA-vvpj-8cmc-gx39 (one unlisted resolver, ``pkgutil.resolve_name``,
reaches every blocked function) and its follow-up mmaitre314/picklescan#66 ("blocklist remains
bypassable via importlib and attribute chains": any function that takes a string and returns a
callable); here the same chain is built from model-library helpers.
"""

from __future__ import annotations

import importlib
import io
import pickle
import pkgutil
import types
from pathlib import Path

import pytest

from mlsecops_provider.core.errors import UnsafeModelError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import scan_model
from mlsecops_provider.core.scan.pickle.allowlist import EXACT_ALLOWED, METRIC_MODULES, Allowlist
from mlsecops_provider.core.scan.pickle.restricted import restricted_unpickler
from mlsecops_provider.core.scan.safe_load import safe_loads
from tests.core.scan.malicious_corpus import (
    EXECS_ARGUMENT,
    GETATTR_BY_NAME,
    RETURNS_MODULE,
    gadget_chain_pickle,
    malicious_corpus,
    write,
)

GADGETS = ("gadget_chain_allowlisted_functions", "scipy_distribution_setstate_exec",
           "reconstructor_given_computed_callable")  # fmt: skip


@pytest.mark.parametrize("name", GADGETS)
def test_gadget_chain_is_caught_by_the_scan(name: str, tmp_path: Path) -> None:
    """The scan fails every gadget pickle with a high or critical finding."""
    result = scan_model(write(malicious_corpus(), name, tmp_path))
    assert result.verdict is Verdict.FAIL, result.findings
    assert any(f["severity"] in ("high", "critical") for f in result.findings)


def test_each_gadget_is_named_in_the_findings(tmp_path: Path) -> None:
    """Every library helper of the chain is its own finding (not one lucky hit)."""
    result = scan_model(write(malicious_corpus(), GADGETS[0], tmp_path))
    named = {f["global"] for f in result.findings}
    for module, name in (RETURNS_MODULE, GETATTR_BY_NAME, EXECS_ARGUMENT):
        assert f"{module}.{name}" in named
    assert any("_parse_arg_template" in f["reason"] for f in result.findings)


@pytest.mark.parametrize("name", GADGETS)
def test_gadget_chain_is_refused_by_the_restricted_unpickler(name: str) -> None:
    """Even without the scan (a scan miss), the load-time unpickler refuses to build it."""
    data = malicious_corpus()[name][1]
    with pytest.raises(pickle.UnpicklingError):
        restricted_unpickler(pickle.Unpickler, Allowlist())(io.BytesIO(data)).load()
    with pytest.raises(UnsafeModelError):
        safe_loads(data, "model.pkl")


def test_no_library_function_is_allowed_by_its_package() -> None:
    """Deny by construction: of all functions in scikit-learn and scipy.stats/sparse modules,
    only the named reconstructors and the metric functions fitted searches keep as scorers
    (``*_score``, ``*_error``, ``*_loss`` of sklearn.metrics' computation modules) are allowed."""
    allow, allowed_functions = Allowlist(), []
    for root in ("sklearn", "scipy.stats", "scipy.sparse"):
        package = importlib.import_module(root)
        for info in pkgutil.walk_packages(package.__path__, root + "."):
            if "tests" in info.name or "externals" in info.name:
                continue
            try:
                module = importlib.import_module(info.name)
            except Exception:  # optional dependencies
                continue
            for attr, value in vars(module).items():
                if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
                    full = f"{info.name}.{attr}"
                    named = full in EXACT_ALLOWED or info.name in METRIC_MODULES
                    if allow.allows(info.name, attr) and not named:
                        allowed_functions.append(full)
    assert allowed_functions == []


def test_chain_would_run_under_plain_pickle_semantics() -> None:
    """The chain is a real pickle: pickletools reads it to the STOP (it is never loaded)."""
    import pickletools

    ops = [op.name for op, _, _ in pickletools.genops(gadget_chain_pickle())]
    assert ops[-1] == "STOP" and ops.count("REDUCE") >= 4 and "BUILD" in ops
