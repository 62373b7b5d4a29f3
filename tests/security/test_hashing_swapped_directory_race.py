"""Attack (time of check / time of use): a subdirectory of the hashed folder is replaced by a
symlink to an outside folder after the walk listed its files and before they are opened.
``O_NOFOLLOW`` only guards the last path component, so the outside file of the same name
would be hashed into the manifest.

Proves: the walk records each file's device and inode and the open checks them, so a file
reached through a swapped folder is refused (it was hashed before the fix). The test
drives the two real steps of ``hash_path`` with the
swap between them (a deterministic stand-in for a concurrent writer).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mlsecops_provider.core.errors import StorageError
from mlsecops_provider.core.hashing import _hash_entries, _walk

SECRET = b"outside the root\n"


def test_a_directory_swapped_for_a_link_after_the_walk_is_not_followed(tmp_path: Path) -> None:
    """After the walk, ``model/sub`` becomes a link to ``outside``: the outside file must
    not be hashed (StorageError, or the inside bytes' digest)."""
    root, outside = tmp_path / "model", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "config.json").write_bytes(b"inside")
    (outside / "config.json").write_bytes(SECRET)
    real_root = os.path.realpath(root, strict=True)
    entries = _walk(real_root, frozenset())
    (root / "sub").rename(tmp_path / "moved-away")
    (root / "sub").symlink_to(outside)
    try:
        files = _hash_entries(entries, workers=1)
    except StorageError:
        return
    assert files["sub/config.json"] != hashlib.sha256(SECRET).hexdigest()
