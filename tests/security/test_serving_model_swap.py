"""Model swap between verification and load (TOCTOU) against ``mlsecops serve``: the
champion's files are replaced after its signed promotion verified; the server must refuse to
start, because it loads only bytes whose digest equals the verified one.

Follows the time-of-check/time-of-use class (CWE-367) applied to model artifacts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.errors import SignatureError
from mlsecops_provider.core.serving.loading import CHAMPION, Loader
from tests.core.promotion.test_promotion import World, artifact_dir, world  # noqa: F401
from tests.core.serving.registry import promote, register


@dataclass
class SwappingLoader(Loader):
    """Replaces the model file on the artifact store right before the bytes are read."""

    target: Any = None
    swapped: bool = False

    def read_files(self, name: str, version: str) -> tuple[dict[str, bytes], str]:
        if not self.swapped:
            self.swapped = True
            path = artifact_dir(self.target) / "model.skops"
            path.write_bytes(path.read_bytes() + b"\x00")
        return super().read_files(name, version)


def test_model_swapped_after_verification_is_not_loaded(world: World) -> None:  # noqa: F811
    version = register(world, "credit-swap", 6)
    promote(world, version, "credit-swap-run-1")
    key = world.keys.public_path.read_bytes()
    loader = SwappingLoader(world.settings, key, target=version.candidate)
    with pytest.raises(SignatureError, match="the verified record says"):
        loader.verified("credit-swap", "champion", CHAMPION)
    assert loader.swapped


def test_verified_model_loads_from_the_bytes_that_were_hashed(world: World) -> None:  # noqa: F811
    version = register(world, "credit-unswapped", 7)
    promote(world, version, "credit-unswapped-run-1")
    loader = Loader(world.settings, world.keys.public_path.read_bytes())
    served: Any = loader.verified("credit-unswapped", "champion", CHAMPION)
    assert served.version == version.candidate.version and len(served.digest) == 64
    assert Path(artifact_dir(version.candidate) / "model.skops").is_file()


@dataclass
class RenamingLoader(Loader):
    """Reads the files under other names with the same root digest: the root digest does not
    bind names, so a rename that keeps the digests in path order is invisible to it (shown on
    a real store in tests/security/test_trust_chain_redteam_records.py)."""

    renamed: bool = False

    def read_files(self, name: str, version: str) -> tuple[dict[str, bytes], str]:
        files, digest = super().read_files(name, version)
        self.renamed = True
        renamed = {
            ("model.skopt" if rel == "model.skops" else rel): data for rel, data in files.items()
        }
        return renamed, digest


def test_files_renamed_after_verification_are_not_loaded(world: World) -> None:  # noqa: F811
    """Serving compares every (name, digest) pair it reads with the files verification
    hashed, not only the root digest."""
    version = register(world, "credit-rename", 8)
    promote(world, version, "credit-rename-run-1")
    loader = RenamingLoader(world.settings, world.keys.public_path.read_bytes())
    with pytest.raises(SignatureError, match="not the verified files"):
        loader.verified("credit-rename", "champion", CHAMPION)
    assert loader.renamed
