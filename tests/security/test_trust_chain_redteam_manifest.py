"""Red team, trust chain (second pass): names that look ignored or alike in a model folder.

The attacker can write the artifact store. The fixed ignore list (``.git``, ``.gitattributes``,
``.github``, ``.gitignore`` at the top level) must match exactly: a case or Unicode variant
of an ignored name, or an ignored name deeper in the tree, is covered by the digest.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from mlsecops_provider.core.hashing import hash_path


def _model(root: Path) -> Path:
    root.mkdir()
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "model.skops").write_bytes(b"weights")
    return root


def test_case_and_unicode_variants_of_ignored_names_are_digested(tmp_path: Path) -> None:
    """``.GIT/``, ``.Gitignore``, a fullwidth-dot ``．git`` and ``sub/.git/`` change the
    root digest and are not reported as ignored (nothing is hidden by a lookalike)."""
    clean = hash_path(_model(tmp_path / "clean")).root_digest
    for index, rel in enumerate((".GIT/payload.pkl", ".Gitignore", "\uff0egit/x", "sub/.git/x")):
        folder = _model(tmp_path / f"m{index}")
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"payload")
        manifest = hash_path(folder)
        assert manifest.root_digest != clean and not manifest.ignored, rel
        assert rel in manifest.files, rel


def test_nfc_and_nfd_spellings_of_a_name_are_two_files(tmp_path: Path) -> None:
    """A second file whose name differs only in Unicode normalisation is a new file, not a
    duplicate the digest could fold away."""
    nfc = unicodedata.normalize("NFC", "mod\u00e8l.skops")
    nfd = unicodedata.normalize("NFD", nfc)
    folder = _model(tmp_path / "model")
    (folder / nfc).write_bytes(b"a")
    before = hash_path(folder)
    (folder / nfd).write_bytes(b"b")
    after = hash_path(folder)
    assert set(after.files) == {*before.files, nfd} and after.root_digest != before.root_digest
