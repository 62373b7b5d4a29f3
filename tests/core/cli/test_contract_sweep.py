"""Every subcommand keeps the CLI contract on bad input: exit 2, one stderr line, no traceback.

The subcommands come from the parser itself (new ones are swept as soon as they are
registered). Every one gets the generic cases built from its own arguments: an unknown
flag, every required argument pointing below a regular file (it can be neither read nor
written), a value its type refuses, a garbage ``--policy``, an unusable ``sqlite:///``
tracking URI. Known subcommands also get specific cases (missing file, directory, empty
file, garbage input, unknown column, out-of-range number); a subcommand without specific
cases is named in a warning, never skipped in silence.
"""

from __future__ import annotations

import argparse
import importlib
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mlsecops_provider.include.generator import generate

if TYPE_CHECKING:
    from tests.conftest import CliResult

Run = Callable[..., "CliResult"]
cli_parser = importlib.import_module("mlsecops_provider.core.cli.parser")
GARBAGE_POLICY = "gates: [unclosed\n  - : :\n"
FAST_SECONDS = 30  # "fails fast": far below MLflow's minutes of retries


def leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every runnable subcommand (``audit verify`` included), from the parser's own tree."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from leaves(sub, (*path, name))
    if path and parser.get_default("handler") is not None:
        yield path, parser


COMMANDS = dict(leaves(cli_parser.build_parser()))


def required_argv(parser: argparse.ArgumentParser, value: str) -> list[str]:
    """Every required argument (and one of each required group) set to ``value``."""
    argv: list[str] = []
    grouped = set()
    for group in parser._mutually_exclusive_groups:
        grouped.update(group._group_actions)
        if group.required:
            takes_value = [a for a in group._group_actions if a.nargs != 0]
            chosen = (takes_value or group._group_actions)[0]
            argv += [chosen.option_strings[0]] + ([value] if chosen.nargs != 0 else [])
    for action in parser._actions:
        if action in grouped or isinstance(action, argparse._HelpAction):
            continue
        if not action.option_strings:
            argv.append(value)
        elif action.required:
            argv += [action.option_strings[0], value]
    return argv


def typed_options(parser: argparse.ArgumentParser) -> list[str]:
    return [
        a.option_strings[0]
        for a in parser._actions
        if a.option_strings and a.type not in (None, str) and a.nargs != 0
    ]


def has_option(parser: argparse.ArgumentParser, flag: str) -> bool:
    return any(flag in a.option_strings for a in parser._actions)


def assert_contract(done: CliResult, case: str, *expected: str) -> None:
    assert done.code == 2, f"{case}: exit {done.code}\n{done.out}\n{done.err}"
    assert len(done.err_lines) == 1, f"{case}: stderr is not one line:\n{done.err}"
    assert "Traceback" not in done.err, f"{case}: traceback\n{done.err}"
    for text in expected:
        assert text in done.err, f"{case}: {text!r} not in {done.err!r}"


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad-inputs")
    (root / "empty").write_bytes(b"")
    (root / "folder").mkdir()
    (root / "garbage.parquet").write_bytes(b"PAR1 this is not parquet")
    (root / "garbage.json").write_text("{not json")
    (root / "policy.yaml").write_text(GARBAGE_POLICY)
    data = root / "data.csv"
    generate(60, seed=3).to_csv(data, index=False)
    return {
        "below_file": str(root / "empty" / "missing.bin"),  # cannot be read nor written
        "missing": str(root / "missing.parquet"),
        "empty": str(root / "empty"),
        "folder": str(root / "folder"),
        "garbage": str(root / "garbage.parquet"),
        "garbage_json": str(root / "garbage.json"),
        "policy": str(root / "policy.yaml"),
        "data": str(data),
        "tracking": f"sqlite:///{root}/no/such/folder/mlflow.db",
        "root": str(root),
    }


def test_the_sweep_sees_the_subcommands() -> None:
    names = {" ".join(path) for path in COMMANDS}
    assert {"validate", "drift", "shadow-eval", "demo-data", "audit verify", "rollback"} <= names


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_generic_bad_inputs_exit_2_with_one_line(
    path: tuple[str, ...], bad: dict[str, str], cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = COMMANDS[path]
    assert_contract(cli([*path, "--no-such-flag"]), "unknown flag")
    required = required_argv(parser, bad["below_file"])
    if required:
        assert_contract(cli([*path]), "no arguments")
        assert_contract(cli([*path, *required]), "inputs below a regular file")
    for flag in typed_options(parser):
        done = cli([*path, *required, flag, "not-a-number"])
        assert_contract(done, f"{flag} not-a-number", flag)
    if has_option(parser, "--policy") and required:
        assert_contract(cli([*path, *required, "--policy", bad["policy"]]), "garbage policy")
    if required:  # a model named by registry URI, an unusable local tracking store
        monkeypatch.setenv("MLFLOW_TRACKING_URI", bad["tracking"])
        started = time.monotonic()
        by_uri = required_argv(parser, "models:/m/1")
        assert_contract(cli([*path, *by_uri]), "unusable tracking URI", "tracking URI")
        assert time.monotonic() - started < FAST_SECONDS
    if path not in SPECIFIC:
        warnings.warn(f"mlsecops {' '.join(path)}: generic bad-input cases only", stacklevel=1)


# ---------------------------------------------------------------------------- specific cases

Case = tuple[str, list[str], tuple[str, ...]]  # name, argv after the command, expected text


def specific(b: dict[str, str]) -> dict[tuple[str, ...], list[Case]]:
    suite = "include/suites/credit_risk.json"
    root = b["root"]
    return {
        ("validate",): [
            ("missing file", [b["missing"], "--suite", suite], ("no such file",)),
            ("directory", [b["folder"], "--suite", suite], ("is a directory",)),
            ("empty file", [b["empty"], "--suite", suite], ("cannot parse",)),
            ("garbage data", [b["garbage"], "--suite", suite], ()),
            ("garbage suite", [b["data"], "--suite", b["garbage_json"]], ()),
            ("garbage policy", [b["data"], "--suite", suite, "--policy", b["policy"]], ("YAML",)),
            ("unknown column", [b["data"], "--suite", suite, "--label", "nope"], ("--label nope",)),
        ],
        ("drift",): [
            ("missing file", ["--reference", b["missing"], "--current", b["data"]], ()),
            ("directory", ["--reference", b["folder"], "--current", b["data"]], ()),
            ("empty file", ["--reference", b["data"], "--current", b["empty"]], ()),
            (
                "unknown label",
                ["--reference", b["data"], "--current", b["data"], "--label", "x"],
                ("--label x",),
            ),
            (
                "unknown excluded column",
                ["--reference", b["data"], "--current", b["data"], "--exclude", "x"],
                ("--exclude x",),
            ),
            (
                "garbage policy",
                ["--reference", b["data"], "--current", b["data"], "--policy", b["policy"]],
                ("YAML",),
            ),
        ],
        ("demo-data",): [
            ("out-of-range rate", [f"{root}/d.parquet", "--label-flip-rate", "7"], ("between 0",)),
            ("out-of-range rate", [f"{root}/d.parquet", "--outlier-rate", "1.5"], ("between 0",)),
            ("out-of-range rows", [f"{root}/d.parquet", "--rows", "-3"], ("at least 1",)),
            ("directory", [b["folder"]], ()),
        ],
        ("deidentify",): [
            ("same file", [b["data"], b["data"]], ("must differ",)),
            ("missing file", [b["missing"], f"{root}/o.csv"], ()),
            ("unknown column", [b["data"], f"{root}/o.csv", "--label", "nope"], ("--label nope",)),
            ("garbage policy", [b["data"], f"{root}/o.csv", "--policy", b["policy"]], ("YAML",)),
        ],
        ("shadow-eval",): [
            (
                "missing data",
                ["--candidate", b["folder"], "--data", b["missing"], "--label", "default"],
                (),
            ),
            ("empty data", ["--candidate", b["folder"], "--data", b["empty"], "--label", "d"], ()),
            (
                "missing model",
                ["--candidate", b["missing"], "--data", b["data"], "--label", "d"],
                (),
            ),
            (
                "empty model folder",
                ["--candidate", b["folder"], "--data", b["data"], "--label", "default"],
                (),
            ),
            (
                "garbage policy",
                [
                    "--candidate",
                    b["folder"],
                    "--data",
                    b["data"],
                    "--label",
                    "d",
                    "--policy",
                    b["policy"],
                ],
                ("YAML",),
            ),  # fmt: skip
        ],
        ("scan-model",): [
            ("missing file", [b["missing"]], ()),
            ("empty file", [b["empty"]], ("empty",)),
            ("garbage policy", [b["garbage"], "--policy", b["policy"]], ("YAML",)),
        ],
        ("audit-deps",): [
            ("missing file", ["--requirements", b["missing"]], ()),
            ("directory", ["--requirements", b["folder"]], ()),
            ("empty file", ["--requirements", b["empty"]], ("no dependencies",)),
            ("out-of-range timeout", ["--installed", "--timeout", "0"], ("at least 1",)),
            ("garbage policy", ["--installed", "--policy", b["policy"]], ("YAML",)),
        ],
        ("hash",): [
            ("missing path", [b["missing"]], ()),
            ("out-of-range workers", [b["data"], "--workers", "0"], ("at least 1",)),
        ],
        ("verify",): [
            ("missing manifest", [b["data"], "--manifest", b["missing"]], ()),
            ("empty manifest", [b["data"], "--manifest", b["empty"]], ()),
            ("garbage manifest", [b["data"], "--manifest", b["garbage_json"]], ()),
        ],
        ("verify-promotion",): [
            ("missing key", ["--registered-model", "m", "--public-key", b["missing"]], ()),
            (
                "empty key",
                [
                    "--registered-model",
                    "m",
                    "--public-key",
                    b["empty"],
                    "--tracking-uri",
                    b["tracking"],
                ],
                (),
            ),  # fmt: skip
            ("directory key", ["--registered-model", "m", "--public-key", b["folder"]], ()),
        ],
        ("audit", "verify"): [
            ("missing log", ["--log", b["missing"]], ("no such audit log",)),
            ("directory log", ["--log", b["folder"]], ()),
        ],
        ("rollback",): [
            ("missing key", ["--registered-model", "m", "--public-key", b["missing"]], ()),
            ("garbage key", ["--registered-model", "m", "--public-key", b["garbage_json"]], ()),
        ],
    }


KEYS = ("missing", "folder", "empty", "garbage", "root", "garbage_json", "policy", "data")
SPECIFIC = set(specific({k: "" for k in (*KEYS, "tracking")}))


@pytest.mark.parametrize("path", sorted(SPECIFIC), ids=" ".join)
def test_specific_bad_inputs_exit_2_with_one_line(
    path: tuple[str, ...], bad: dict[str, str], cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    if path not in COMMANDS:
        pytest.fail(f"mlsecops {' '.join(path)} is no longer a subcommand: update the sweep")
    monkeypatch.chdir(Path(__file__).resolve().parents[3])  # the README's relative paths
    for name, argv, expected in specific(bad)[path]:
        assert_contract(cli([*path, *argv]), name, *expected)


def test_the_installed_command_keeps_the_contract(bad: dict[str, str]) -> None:
    """Out of process too: no library log line or warning joins the one error line."""
    import os
    import subprocess
    import sys

    script = str(Path(sys.executable).parent / "mlsecops")
    env = {**os.environ, "MLFLOW_TRACKING_URI": bad["tracking"]}
    runs = [
        ["validate", bad["missing"], "--suite", "include/suites/credit_risk.json"],
        ["shadow-eval", "--candidate", "models:/m/1", "--data", bad["data"], "--label", "d"],
        ["drift", "--reference", bad["data"], "--current", bad["data"], "--policy", bad["policy"]],
    ]
    for argv in runs:
        done = subprocess.run(
            [script, *argv], capture_output=True, text=True, env=env, timeout=120, check=False,
            cwd=Path(__file__).resolve().parents[3],
        )  # fmt: skip
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1, (argv, done.stderr)
        assert lines[0].startswith(f"mlsecops {argv[0]}: error: "), lines
