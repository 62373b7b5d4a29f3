"""Attack: make the console script's fast exit (``os._exit`` after a light command) lose
output or report the wrong exit code: a closed stdout or stderr, a large output into a pipe,
a reader that closes the pipe early, a manifest written with ``hash --out``.

Proves: ``run()`` exits with the code ``main()`` returns (0 match, 1 mismatch, 2 could not
check) without a traceback whether stdout/stderr are closed or pipes, a mismatch never exits
0, every line of a large output reaches the pipe, and the manifest ``hash --out`` writes is
complete and verifies.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlsecops_provider.core.cli import main

SCRIPT = (
    "import sys\n"
    "sys.argv = ['mlsecops', *{argv!r}]\n"
    "from mlsecops_provider.core.cli import {entry}\n"
    "{call}\n"
)
ENTRIES = {"run": ("run", "run()"), "main": ("main", "sys.exit(main())")}


def _script(argv: list[str], entry: str = "run") -> str:
    name, call = ENTRIES[entry]
    return SCRIPT.format(argv=argv, entry=name, call=call)


def _shell(argv: list[str], redirect: str, entry: str = "run") -> subprocess.CompletedProcess[str]:
    """The script with its stdout/stderr redirected by a shell (e.g. ``>&-``: closed)."""
    command = f'exec "$0" -c "$1" {redirect}'
    return subprocess.run(
        ["sh", "-c", command, sys.executable, _script(argv, entry)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def model(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "model"
    folder.mkdir()
    for index in range(20):
        (folder / f"w{index:02}.bin").write_bytes(b"w%d" % index)
    manifest = tmp_path / "manifest.json"
    assert main(["hash", str(folder), "--out", str(manifest)]) == 0
    return folder, manifest


def _cases(tmp_path: Path, model: tuple[Path, Path]) -> dict[str, tuple[list[str], int]]:
    folder, manifest = model
    changed = tmp_path / "changed"
    changed.mkdir()
    for index in range(20):
        (changed / f"w{index:02}.bin").write_bytes(b"other%d" % index)
    return {
        "hash": (["hash", str(folder)], 0),
        "hash-missing": (["hash", str(tmp_path / "absent")], 2),
        "verify-match": (["verify", str(folder), "--manifest", str(manifest)], 0),
        "verify-mismatch": (["verify", str(changed), "--manifest", str(manifest)], 1),
        "verify-bad-manifest": (["verify", str(folder), "--manifest", str(folder / "w00.bin")], 2),
    }


CASES = ["hash", "hash-missing", "verify-match", "verify-mismatch", "verify-bad-manifest"]


@pytest.mark.parametrize("redirect", [">&-", "2>&-", ">&- 2>&-"], ids=["stdout", "stderr", "both"])
@pytest.mark.parametrize("case", CASES)
def test_closed_stdout_or_stderr_keeps_the_commands_exit_code(
    tmp_path: Path, model: tuple[Path, Path], case: str, redirect: str
) -> None:
    argv, expected = _cases(tmp_path, model)[case]
    slow = _shell(argv, redirect, entry="main")
    assert slow.returncode == expected, slow.stderr  # the command's own code
    fast = _shell(argv, redirect, entry="run")
    assert fast.returncode == expected, fast.stderr
    assert "Traceback" not in fast.stderr


def test_a_large_output_into_a_pipe_arrives_whole(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    for index in range(4000):
        (folder / f"file-with-a-long-name-{index:05}.bin").write_bytes(b"%d" % index)
    manifest = tmp_path / "big.json"
    assert main(["hash", str(folder), "--out", str(manifest)]) == 0
    for index in range(4000):
        (folder / f"file-with-a-long-name-{index:05}.bin").write_bytes(b"changed")
    done = _shell(["verify", str(folder), "--manifest", str(manifest)], "")
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("MISMATCH") and len(done.stdout) > 1 << 17
    assert len([line for line in lines if line.startswith("  changed: ")]) == 4000
    assert lines[-1].endswith("file-with-a-long-name-03999.bin")


def test_a_reader_closing_the_pipe_early_never_turns_a_mismatch_into_exit_0(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    for index in range(4000):
        (folder / f"file-with-a-long-name-{index:05}.bin").write_bytes(b"%d" % index)
    manifest = tmp_path / "big.json"
    assert main(["hash", str(folder), "--out", str(manifest)]) == 0
    for index in range(4000):
        (folder / f"file-with-a-long-name-{index:05}.bin").write_bytes(b"changed")
    script = _script(["verify", str(folder), "--manifest", str(manifest)])
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(8) == b"MISMATCH"
    proc.stdout.close()  # like ``| head -c 8``
    proc.stderr.read()
    assert proc.wait(timeout=120) != 0


@pytest.mark.parametrize("redirect", ["", ">&-"], ids=["pipe", "closed-stdout"])
def test_hash_out_writes_a_complete_manifest(tmp_path: Path, redirect: str) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for index in range(500):
        (folder / f"w{index:03}.bin").write_bytes(b"x" * index)
    out = tmp_path / "out" / "manifest.json"
    done = _shell(["hash", str(folder), "--out", str(out)], redirect)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert len(json.dumps(data)) > 10_000
    assert main(["verify", str(folder), "--manifest", str(out)]) == 0
    if not redirect:
        assert len(done.stdout.strip()) == 64
    single = tmp_path / "one.bin"
    single.write_bytes(b"weights")
    done = _shell(["hash", str(single)], redirect)
    assert done.returncode == 0, done.stderr
    if not redirect:
        assert done.stdout.strip() == hashlib.sha256(b"weights").hexdigest()
