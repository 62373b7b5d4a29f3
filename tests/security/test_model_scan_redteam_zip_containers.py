"""Red team: pickles hidden in zip containers the way scanner bypasses hid them.

A torch-style zip listing ``archive/data.pkl`` twice (``zipfile`` reads the last entry,
other readers the first), a zip inside a zip, a pickle under a name no scanner looks at
(``a/b/c/model.bin``), a ``..`` member name, bzip2 and lzma members. Each is failed or left
undecided by the gate (never passed) and refused by ``safe_load``; none got through.

Advisories: JFrog, "Unveiling 3 zero-day vulnerabilities in PickleScan" (picklescan
GHSA-gx77-x2pv-48v7, CVE-2025-10155/10156: zip members a scanner skips or cannot read while
``torch.load`` reads them), and the picklescan bypasses collected in fickling#190.
"""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from pathlib import Path

import pytest

from mlsecops_provider.core.errors import DataError, UnsafeModelError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import scan_model
from mlsecops_provider.core.scan.safe_load import safe_loads
from tests.core.scan.malicious_corpus import resolve_name_pickle


def _zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", method) as archive:
        warnings.simplefilter("ignore")  # duplicate names are the point
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_attacks() -> dict[str, bytes]:
    evil, good = resolve_name_pickle(), pickle.dumps({"w": 1}, 2)
    version = ("archive/version", b"3\n")
    return {
        "duplicate_entry_evil_last": _zip([("archive/data.pkl", good),
                                           ("archive/data.pkl", evil), version]),
        "duplicate_entry_evil_first": _zip([("archive/data.pkl", evil),
                                            ("archive/data.pkl", good), version]),
        "zip_in_zip": _zip([("inner.zip", _zip([("archive/data.pkl", evil)]))]),
        "odd_member_name_deflated": _zip([("a/b/c/model.bin", evil)], zipfile.ZIP_DEFLATED),
        "dotdot_member_name": _zip([("../../data.pkl", evil)]),
        "bzip2_member": _zip([("archive/data.pkl", evil)], zipfile.ZIP_BZIP2),
        "lzma_member": _zip([("archive/data.pkl", evil)], zipfile.ZIP_LZMA),
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(zip_attacks()))
def test_zip_hidden_pickle_is_refused(name: str, tmp_path: Path) -> None:
    """The gate fails (or, for a member it cannot read, errors) and safe_load refuses."""
    data = zip_attacks()[name]
    path = tmp_path / "model.pt"
    path.write_bytes(data)
    assert scan_model(path).verdict in (Verdict.FAIL, Verdict.ERROR)
    with pytest.raises((UnsafeModelError, DataError)):
        safe_loads(data, "model.pt")
