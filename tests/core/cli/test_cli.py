"""The mlsecops CLI: help, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlsecops_provider.core.cli import main
from mlsecops_provider.core.cli.main import COMMAND_MODULES


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo-data", "validate", "hash", "verify", "audit-deps"):
        assert command in out
    assert len(COMMAND_MODULES) >= 4


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["no-such-command"])
    assert caught.value.code == 2
    assert main([]) == 2


def test_demo_data_writes_and_reports_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "batch.csv"
    assert main(["demo-data", str(out), "--rows", "30", "--drift"]) == 0
    printed = capsys.readouterr().out
    assert out.exists() and "30 rows" in printed and "sha256:" in printed


def test_errors_are_one_line_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo-data", "gs://bucket/x.parquet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown URI scheme 'gs'" in err


def test_console_script_is_installed() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mlsecops"), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "demo-data" in done.stdout
