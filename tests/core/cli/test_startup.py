"""Start-up work of ``mlsecops``: a subcommand imports only its own module (no speed asserted)."""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
cli_main = importlib.import_module("mlsecops_provider.core.cli.main")
cli_parser = importlib.import_module("mlsecops_provider.core.cli.parser")
commands = importlib.import_module("mlsecops_provider.core.cli.commands")

HEAVY = (
    "airflow",
    "boto3",
    "botocore",
    "great_expectations",
    "mlflow",
    "numpy",
    "pandas",
    "presidio_analyzer",
    "pyarrow",
    "sklearn",
    "yaml",
)
HASH_MODULES = {  # all of the project that ``mlsecops hash FILE`` needs
    "mlsecops_provider",
    "mlsecops_provider.core",
    "mlsecops_provider.core.cli",
    "mlsecops_provider.core.cli.commands",
    "mlsecops_provider.core.cli.contract",
    "mlsecops_provider.core.cli.hash_cmd",
    "mlsecops_provider.core.cli.light",
    "mlsecops_provider.core.cli.main",
    "mlsecops_provider.core.errors",
    "mlsecops_provider.core.hashing",
    "mlsecops_provider.core.manifest",
}


def choices(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def test_command_owners_name_every_command_and_its_module() -> None:
    """The table that lets ``mlsecops NAME`` import one module is complete and true."""
    assert choices(cli_parser.build_parser()) == set(commands.COMMAND_OWNERS)
    for name, module in commands.COMMAND_OWNERS.items():
        assert module in commands.COMMAND_MODULES, name
        assert name in choices(cli_parser.build_parser((module,))), (name, module)


@pytest.mark.parametrize(
    ("argv", "full"),
    [
        (["hash", "x"], False),
        (["-v", "--debug", "hash", "x"], False),
        (["verify", "--help"], False),
        ([], True),
        (["--help"], True),
        (["-h", "hash"], True),
        (["--verb", "hash", "x"], True),  # an abbreviated flag: argparse decides
        (["hahs", "x"], True),  # misspelt: the full parser's "invalid choice" message
    ],
)
def test_parser_for_builds_the_full_parser_unless_one_command_is_named(
    argv: list[str], full: bool
) -> None:
    expected = choices(cli_parser.build_parser()) if full else {"hash", "verify"}
    assert choices(cli_parser.parser_for(argv)) == expected


# what argparse, threading and re bring along: a plain ``mlsecops hash`` loads none of it
PARSING = ("argparse", "re", "gettext", "locale", "enum", "threading", "functools", "typing")


@pytest.mark.parametrize("target", ["file", "folder"])
def test_hash_imports_no_heavy_library_and_no_parser(tmp_path: Path, target: str) -> None:
    """``mlsecops hash PATH`` in a fresh process loads no gate, no MLflow/pandas/boto3/etc.,
    and, its arguments being plain, neither argparse nor threading (nor what they import)."""
    path = tmp_path / "m.bin"
    if target == "folder":
        path.mkdir()
        for index in range(3):
            (path / f"w{index}.bin").write_bytes(b"weights %d" % index)
    else:
        path.write_bytes(b"weights")
    expected = cli_main_hash(path)
    script = (
        "import sys\n"
        "from mlsecops_provider.core.cli import main\n"
        f"code = main(['hash', {str(path)!r}, '--workers=2'])\n"
        "print(code, *sorted(sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", script],  # -S: no site, so no editable import hook
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(installed_layout(tmp_path / "site"))},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    digest, report = done.stdout.strip().splitlines()
    assert digest == expected
    code, *loaded = report.split()
    assert code == "0"
    modules = set(loaded)
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY) == []
    assert sorted(modules & set(PARSING)) == []
    ours = {m for m in modules if m.startswith("mlsecops_provider")}
    assert ours <= HASH_MODULES, sorted(ours - HASH_MODULES)


def installed_layout(site: Path) -> Path:
    """The package laid out as installed (``provider/`` its root, ``core/`` a subpackage),
    linked: the editable install's import hook loads re and pathlib in every process."""
    package = site / "mlsecops_provider"
    package.mkdir(parents=True)
    for source in (ROOT / "provider").glob("*.py"):
        (package / source.name).symlink_to(source)
    (package / "core").symlink_to(ROOT / "core", target_is_directory=True)
    return site


def cli_main_hash(path: Path) -> str:
    from mlsecops_provider.core.hashing import hash_path

    return hash_path(path).root_digest


@pytest.mark.parametrize("columns", ["", "57", "junk", "0"])
def test_help_width_is_the_one_argparse_would_use(
    columns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parser's help width (computed without shutil) is what argparse itself computes."""
    import shutil

    if columns:
        monkeypatch.setenv("COLUMNS", columns)
    else:
        monkeypatch.delenv("COLUMNS", raising=False)
    expected = argparse.HelpFormatter("mlsecops")._width
    assert cli_parser._help_width() == expected == shutil.get_terminal_size().columns - 2


def _console(argv: list[str], prelude: str = "") -> subprocess.CompletedProcess[str]:
    """The console script's function in a fresh process (stdout a pipe: block-buffered)."""
    script = (
        "import sys\n"
        "class Teardown:\n"
        "    def __del__(self):\n"
        "        sys.stderr.write('teardown ran\\n')\n"
        "kept = Teardown()\n"
        f"{prelude}\n"
        f"sys.argv = ['mlsecops', *{argv!r}]\n"
        "from mlsecops_provider.core.cli import run\n"
        "run()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def test_console_script_ends_a_light_command_without_teardown_losing_no_output(
    tmp_path: Path,
) -> None:
    """``hash``/``verify`` skip the interpreter's teardown (no ``__del__`` at exit), yet every
    line reaches a pipe and the exit code is the command's."""
    folder = tmp_path / "model"
    folder.mkdir()
    for index in range(300):
        (folder / f"w{index:03}.bin").write_bytes(b"x%d" % index)
    manifest = tmp_path / "m.json"
    assert cli_main.main(["hash", str(folder), "--out", str(manifest)]) == 0
    for index in range(0, 300, 2):
        (folder / f"w{index:03}.bin").write_bytes(b"changed")
    done = _console(["verify", str(folder), "--manifest", str(manifest)])
    assert done.returncode == 1, done.stderr
    changed = [line for line in done.stdout.splitlines() if line.startswith("  changed: ")]
    assert len(changed) == 150 and done.stdout.startswith("MISMATCH")
    assert "teardown ran" not in done.stderr
    done = _console(["hash", str(tmp_path / "absent")])
    assert done.returncode == 2 and "no such file" in done.stderr
    assert "teardown ran" not in done.stderr


@pytest.mark.parametrize(
    "prelude",
    [
        "import atexit; atexit.register(lambda: sys.stderr.write('atexit ran\\n'))",
        "import threading, time; threading.Thread(target=time.sleep, args=(0.3,)).start()",
    ],
    ids=["atexit-callback", "thread-running"],
)
def test_console_script_exits_the_normal_way_when_work_is_left_at_exit(
    tmp_path: Path, prelude: str
) -> None:
    path = tmp_path / "m.bin"
    path.write_bytes(b"weights")
    done = _console(["hash", str(path)], prelude)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == hashlib.sha256(b"weights").hexdigest()
    assert "teardown ran" in done.stderr
    if "atexit" in prelude:
        assert "atexit ran" in done.stderr


def test_console_script_of_a_heavy_command_exits_the_normal_way(tmp_path: Path) -> None:
    done = _console(["drift", "--reference", str(tmp_path / "r.csv"), "--current", "c.csv"])
    assert done.returncode == 2 and done.stderr.startswith("mlsecops drift: "), done.stderr
    assert "teardown ran" in done.stderr
