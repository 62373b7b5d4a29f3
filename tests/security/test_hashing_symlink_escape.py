"""Attack: get a file outside the hashed directory into its manifest through a symlink, now
that the walk uses ``os.path`` and a string prefix check (``_inside``): a link into a
sibling whose name starts with the root's (``model`` -> ``model-evil``), links to ``/``,
relative ``..`` links, chains, loops, links to directories, a root that is itself a link,
``//`` and trailing-slash spellings of the root, ``file://`` URIs.

Proves: every escape is refused with StorageError (no manifest), links that stay inside are
hashed under their own name, and the manifest never holds the outside file's digest.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mlsecops_provider.core.errors import StorageError
from mlsecops_provider.core.hashing import _inside, compare, hash_path

SECRET = b"outside secret\n"


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """``tmp/x/model`` (the root) beside ``tmp/x/model-evil``, ``tmp/x/modelx``, ``tmp/x/mod``."""
    base = tmp_path / "x"
    (base / "model" / "sub").mkdir(parents=True)
    (base / "model" / "weights.bin").write_bytes(b"weights")
    (base / "model" / "sub" / "config.json").write_bytes(b"{}")
    for sibling in ("model-evil", "modelx", "mod", "model.d"):
        (base / sibling).mkdir()
        (base / sibling / "file").write_bytes(SECRET)
    return base / "model"


def _spellings(root: Path) -> list[str]:
    text = str(root)
    return [text, text + "/", text + "//", "/" + text, root.as_uri(), f"file://localhost{text}"]


ESCAPES = [
    "../model-evil/file",
    "../modelx/file",
    "../mod/file",
    "../model.d/file",
    "{base}/model-evil/file",
    "{base}/model/../model-evil/file",
    "{base}/model/sub/../../model-evil/file",
    "/",
    "/etc/passwd",
    "/dev/null",
    "..",
    "../model-evil",
]


@pytest.mark.parametrize("target", ESCAPES)
def test_a_link_leaving_the_root_is_refused(tree: Path, target: str) -> None:
    """A link that resolves outside the root (or to a directory or device) is refused,
    whichever way the root is spelled."""
    (tree / "sub" / "link").symlink_to(target.format(base=tree.parent))
    for spelling in _spellings(tree):
        with pytest.raises(StorageError):
            hash_path(spelling)


def test_a_chain_that_ends_outside_is_refused(tree: Path) -> None:
    """inside -> inside -> outside: resolved to the end, refused."""
    (tree / "hop2").symlink_to("../model-evil/file")
    (tree / "sub" / "hop1").symlink_to("../hop2")
    with pytest.raises(StorageError, match="outside"):
        hash_path(tree)


@pytest.mark.parametrize("kind", ["self", "pair", "to_root", "to_subdir", "dangling"])
def test_loops_directories_and_broken_links_are_refused(tree: Path, kind: str) -> None:
    """Loops, links to the root or a subdirectory, and broken links: StorageError."""
    if kind == "self":
        (tree / "loop").symlink_to("loop")
    elif kind == "pair":
        (tree / "a").symlink_to("b")
        (tree / "b").symlink_to("a")
    elif kind == "to_root":
        (tree / "sub" / "up").symlink_to("..")
    elif kind == "to_subdir":
        (tree / "dir").symlink_to("sub")
    else:
        (tree / "gone").symlink_to("missing-file")
    with pytest.raises(StorageError):
        hash_path(tree)


def test_a_root_that_is_a_link_judges_links_against_its_target(tree: Path) -> None:
    """Root ``alias -> model``: a link inside to ``../model-evil`` (relative to the real
    folder) is refused; a link to a file of the real folder is hashed under its own name."""
    alias = tree.parent / "alias"
    alias.symlink_to("model")
    (tree / "inner").symlink_to("weights.bin")
    (tree / "abs").symlink_to(alias / "sub" / "config.json")  # through the root's alias
    manifest = hash_path(alias)
    assert manifest.files["inner"] == manifest.files["weights.bin"]
    assert manifest.files["abs"] == hashlib.sha256(b"{}").hexdigest()
    secret = hashlib.sha256(SECRET).hexdigest()
    assert secret not in manifest.files.values()
    (tree / "sub" / "out").symlink_to("../../model-evil/file")
    with pytest.raises(StorageError, match="outside"):
        hash_path(alias)
    with pytest.raises(StorageError, match="outside"):
        compare(manifest, alias)


def test_a_root_link_into_a_prefix_sibling_does_not_widen_the_root(tree: Path) -> None:
    """Root ``model-evil`` reached through a link named like the real root: its links are
    judged against ``model-evil``, so a link from it back into ``model`` is refused too."""
    evil = tree.parent / "model-evil"
    (evil / "back").symlink_to("../model/weights.bin")
    with pytest.raises(StorageError, match="outside"):
        hash_path(evil)


def test_the_prefix_check_needs_a_separator() -> None:
    """``_inside`` is a path check, not a bare string prefix; ``/`` holds everything."""
    assert not _inside("/x/model-evil/file", "/x/model")
    assert not _inside("/x/modelfile", "/x/model")
    assert not _inside("/x/mode", "/x/model")
    assert _inside("/x/model", "/x/model")
    assert _inside("/x/model/a/b", "/x/model")
    assert _inside("/etc/passwd", "/")
    assert _inside("/", "/")


def test_no_outside_digest_when_every_escape_is_removed(tree: Path) -> None:
    """Control: with only inside links the manifest hashes and holds no outside digest."""
    (tree / "sub" / "w").symlink_to("../weights.bin")
    manifest = hash_path(str(tree) + "/")
    assert set(manifest.files) == {"weights.bin", "sub/config.json", "sub/w"}
    assert hashlib.sha256(SECRET).hexdigest() not in manifest.files.values()
    assert os.path.basename(str(tree)) == manifest.name
