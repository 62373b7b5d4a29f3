"""``make lint`` type-checks every source folder with our own imports resolved."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLANTED = {  # folder -> (import, statement): a type error only resolved imports reveal
    "core": ("from mlsecops_provider.core.errors import ConfigError", 'x: int = ConfigError("a")'),
    "operators": ("from mlsecops_provider.operators.base import fields", 'x: int = fields("a")'),
    "sensors": (
        "from mlsecops_provider.core.settings import mlsecops_home",
        "x: int = mlsecops_home()",
    ),
    "plugins": ("from mlsecops_provider.core.evidence import Verdict", "x: int = Verdict.PASS"),
}


@pytest.mark.slow
def test_a_planted_type_error_in_any_source_folder_fails_make_lint(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(".venv", ".mlsecops", ".git", "node_modules", "build"),
    )
    for folder, (imports, statement) in PLANTED.items():
        (copy / folder / "planted_error.py").write_text(
            f'"""Planted."""\n\n{imports}\n\n{statement}\n'
        )
    venv = Path(sys.executable).parent.parent
    done = subprocess.run(
        # -o install: use this venv as it is; TYPES: a link tree of the copy, not of ROOT
        ["make", "-o", "install", "lint", f"VENV={venv}", f"TYPES={tmp_path / 'types'}"],
        cwd=copy,
        capture_output=True,
        text=True,
        env={**os.environ, "MYPY_CACHE_DIR": str(tmp_path / "mypy-cache")},
        timeout=600,
    )
    assert done.returncode != 0
    for folder in PLANTED:
        assert f"mlsecops_provider/{folder}/planted_error.py:5: error" in done.stdout, folder
