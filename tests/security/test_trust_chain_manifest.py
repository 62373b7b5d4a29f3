"""Red team, trust chain: files the digest does not cover cannot ride along with a model.

The root digest (equal to OpenSSF model-signing's) leaves out ``.git``, ``.gitattributes``,
``.github`` and ``.gitignore``. The attacker either adds a name to an (unsigned) manifest's
ignore list to hide a new file, or drops files under an ignored name inside a model folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.hashing import compare, hash_path
from mlsecops_provider.core.manifest import Manifest
from mlsecops_provider.core.promotion.verify import verify_promotion
from tests.core.promotion import test_promotion
from tests.core.promotion.test_promotion import World, artifact_dir, new_version, run_promotion

world = test_promotion.world  # the module-scoped fixture: MLflow, keys, evidence store


def _model(root: Path) -> Path:
    root.mkdir()
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "model.skops").write_bytes(b"weights")
    return root


def test_name_added_to_the_manifest_ignore_list_is_refused(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    """An ignore list edited in the unsigned manifest cannot hide a file added to the folder."""
    model = _model(tmp_path / "model")
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(hash_path(model).to_json())
    data = json.loads(manifest_path.read_text())
    data["ignore"].append("payload.pkl")
    manifest_path.write_text(json.dumps(data))
    (model / "payload.pkl").write_bytes(b"cos\nsystem\n(S'id'\ntR.")
    with pytest.raises(DataError, match="differs from the fixed list"):
        compare(Manifest.from_json(manifest_path.read_text()), model)
    done = cli(["verify", str(model), "--manifest", str(manifest_path)])
    assert done.code == 2 and "differs from the fixed list" in done.err
    assert len(done.err.strip().splitlines()) == 1


def test_file_hidden_under_an_ignored_name_is_reported(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    """Files under .git/ in a folder are listed as not covered by the digest."""
    model = _model(tmp_path / "model")
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(hash_path(model).to_json())
    (model / ".git").mkdir()
    (model / ".git" / "payload.pkl").write_bytes(b"hidden")
    assert hash_path(model).ignored == (".git",)
    done = cli(["verify", str(model), "--manifest", str(manifest_path)])
    assert "ignored (not covered by the digest): .git" in done.out


def test_file_hidden_under_git_in_the_registered_model_fails_verification(world: World) -> None:
    """A signed model with an extra file under .git/ is not VERIFIED (model-signing skips it)."""
    candidate = new_version(world, "hidden-git", 70)
    assert run_promotion(world, candidate, "run-hidden")[0].verdict is Verdict.PASS
    hidden = artifact_dir(candidate) / ".git"
    hidden.mkdir()
    (hidden / "model.pkl").write_bytes(b"not covered")
    check = verify_promotion(
        candidate.name, "champion", world.keys.public_path.read_bytes(), world.settings.tracking_uri
    )
    assert not check.verified and check.code == "ignored_files" and ".git" in check.reason


def test_candidate_with_files_under_an_ignored_name_is_not_promoted(world: World) -> None:
    """The promotion gate refuses to sign a folder whose digest would not cover every file."""
    candidate = new_version(world, "hidden-github", 71)
    (artifact_dir(candidate) / ".github").mkdir()
    (artifact_dir(candidate) / ".github" / "x").write_bytes(b"x")
    result, _ = run_promotion(world, candidate, "run-hidden-2")
    assert result.verdict is Verdict.FAIL and "does not cover" in result.message
