"""The mlsecops CLI: help, the exit-code contract, one-line errors, shared flags."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from mlsecops_provider.core.cli import contract
from mlsecops_provider.core.cli.audit_deps_cmd import advisory_source
from mlsecops_provider.core.evidence import Verdict

if TYPE_CHECKING:
    from tests.conftest import CliResult

Run = Callable[..., "CliResult"]
cli_parser = importlib.import_module("mlsecops_provider.core.cli.parser")
commands = importlib.import_module("mlsecops_provider.core.cli.commands")


def assert_usage_error(done: CliResult, *expected: str) -> None:
    """Exit 2, exactly one line on stderr, no traceback, the line names what is wrong."""
    assert done.code == 2, (done.out, done.err)
    assert len(done.err_lines) == 1, done.err
    assert "Traceback" not in done.err
    for text in expected:
        assert text in done.err, done.err


def test_help_lists_every_subcommand_and_the_contract(cli: Run) -> None:
    done = cli(["--help"])
    assert done.code == 0
    for command in ("demo-data", "validate", "hash", "verify", "audit-deps", "drift"):
        assert command in done.out
    assert "exit codes (every subcommand)" in done.out and "MLSECOPS_DEBUG=1" in done.out
    assert len(commands.COMMAND_MODULES) >= 4


def test_exit_code_map() -> None:
    assert [contract.exit_code(v) for v in Verdict] == [
        {"pass": 0, "warn": 0, "fail": 1, "error": 2}[v.value] for v in Verdict
    ]
    assert contract.exit_code("unheard-of") == 2  # fail closed


def test_usage_errors_exit_2_with_one_line(cli: Run) -> None:
    assert_usage_error(cli(["no-such-command"]), "invalid choice")
    assert_usage_error(cli(["validate"]), "mlsecops validate: error:", "--suite")
    assert_usage_error(cli(["audit"]), "a subcommand is required")
    assert cli([]).code == 2


def test_demo_data_writes_and_reports_digest(tmp_path: Path, cli: Run) -> None:
    out = tmp_path / "batch.csv"
    done = cli(["demo-data", str(out), "--rows", "30", "--drift"])
    assert done.code == 0
    assert out.exists() and "30 rows" in done.out and "sha256:" in done.out


def test_out_of_range_numbers_are_usage_errors(tmp_path: Path, cli: Run) -> None:
    out = str(tmp_path / "x.parquet")
    assert_usage_error(cli(["demo-data", out, "--label-flip-rate", "7"]), "between 0 and 1")
    assert_usage_error(cli(["demo-data", out, "--outlier-rate", "-0.1"]), "--outlier-rate")
    assert_usage_error(cli(["demo-data", out, "--rows", "0"]), "at least 1")
    assert_usage_error(cli(["demo-data", out, "--label-flip-rate", "nan"]), "finite")
    assert not Path(out).exists()


def test_errors_are_one_line_with_exit_2(cli: Run) -> None:
    assert_usage_error(cli(["demo-data", "gs://bucket/x.parquet"]), "unknown URI scheme 'gs'")


# ---------------------------------------------------------------------------- any exception


def boom_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A subcommand whose handler raises an exception that is not ours (a hand-written fake)."""
    (tmp_path / "boom_cmd.py").write_text(
        "def register(subparsers):\n"
        "    parser = subparsers.add_parser('boom')\n"
        "    parser.set_defaults(handler=run)\n"
        "def run(args):\n"
        "    raise RuntimeError('kaput\\nsecond line')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(commands, "COMMAND_MODULES", (*commands.COMMAND_MODULES, "boom_cmd"))


def test_any_exception_is_exit_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Run
) -> None:
    boom_module(tmp_path, monkeypatch)
    monkeypatch.delenv("MLSECOPS_DEBUG", raising=False)
    assert_usage_error(cli(["boom"]), "mlsecops boom: error: RuntimeError: kaput second line")


def test_debug_shows_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Run
) -> None:
    boom_module(tmp_path, monkeypatch)
    done = cli(["--debug", "boom"])
    assert done.code == 2 and "Traceback" in done.err and "RuntimeError: kaput" in done.err
    monkeypatch.setenv("MLSECOPS_DEBUG", "1")
    done = cli(["boom"])
    assert done.code == 2 and "Traceback" in done.err


# ---------------------------------------------------------------------------- label, columns


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A table that is not the demo's: label ``churned``, features ``tenure`` and ``spend``."""
    root = tmp_path_factory.mktemp("churn")
    rng = np.random.default_rng(5)

    def table(rows: int, churn_rate: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "account": [f"a{i}" for i in range(rows)],
                "tenure": rng.normal(24, 6, rows).round(3),
                "spend": rng.normal(80, 15, rows).round(3),
                "churned": (rng.random(rows) < churn_rate).astype(int),
            }
        )

    paths = {"ref": str(root / "ref.csv"), "shifted": str(root / "shifted.csv")}
    table(800, 0.2).to_csv(paths["ref"], index=False)
    table(800, 0.6).to_csv(paths["shifted"], index=False)
    suite = {
        "name": "churn",
        "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "churned"}}],
    }
    paths["suite"] = str(root / "suite.json")
    Path(paths["suite"]).write_text(json.dumps(suite))
    return paths


def test_validate_a_table_whose_label_has_another_name(
    churn: dict[str, str], tmp_path: Path, cli: Run
) -> None:
    base = ["validate", churn["shifted"], "--suite", churn["suite"], "--reference", churn["ref"]]
    base += ["--exclude", "account"]
    done = cli(base)  # the default policy names no label: the label screen says it did not run
    assert done.code == 0, done.err
    assert "label_shift" in done.out and "no label column given" in done.out
    report = tmp_path / "report.json"
    done = cli([*base, "--label", "churned", "--report", str(report), "--json"])
    assert done.code == 1, done.err  # the label distribution moved from 20 % to 60 %
    screens = json.loads(report.read_text())["details"]["screens"]
    assert screens["label_shift"]["status"] == "fail"
    assert "churned" not in screens["drift"]["metrics"].get("columns", {})
    assert_usage_error(cli([*base, "--label", "target"]), "--label target: no such column")


def test_drift_unknown_columns_are_usage_errors(churn: dict[str, str], cli: Run) -> None:
    base = ["drift", "--reference", churn["ref"], "--current", churn["shifted"]]
    assert cli([*base, "--label", "churned", "--exclude", "account"]).code == 0
    assert_usage_error(cli([*base, "--label", "nope"]), "--label nope: no such column")
    assert_usage_error(cli([*base, "--exclude", "acount"]), "--exclude acount: no such column")


# ---------------------------------------------------------------------------- policy, env


def test_malformed_policy_is_one_line(tmp_path: Path, churn: dict[str, str], cli: Run) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text("gates:\n  drift: [1, 2\n  shadow: {a: 1\n")
    argv = ["drift", "--reference", churn["ref"], "--current", churn["ref"], "--policy", policy]
    assert_usage_error(cli(argv), "not valid YAML at line")


def test_mlsecops_policy_reaches_the_cli(
    tmp_path: Path, churn: dict[str, str], monkeypatch: pytest.MonkeyPatch, cli: Run
) -> None:
    policy = tmp_path / "env-policy.yaml"
    policy.write_text("gates: {drift: {min_drifted_columns: 0}}\n")
    monkeypatch.setenv("MLSECOPS_POLICY", str(policy))
    argv = ["drift", "--reference", churn["ref"], "--current", churn["ref"]]
    assert_usage_error(cli(argv), str(policy), "min_drifted_columns")


def test_audit_deps_reads_the_advisory_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Run
) -> None:
    import argparse

    flags = argparse.Namespace(advisory_db=None, osv_url=None)
    env = {"MLSECOPS_ADVISORY_DB": "/db", "MLSECOPS_OSV_URL": "http://127.0.0.1:9"}
    assert advisory_source(flags, env) == {"advisory_db": "/db", "osv_url": None}
    assert advisory_source(flags, {"MLSECOPS_OSV_URL": "http://x"})["osv_url"] == "http://x"
    flags.osv_url = "http://flag"
    assert advisory_source(flags, env) == {"advisory_db": None, "osv_url": "http://flag"}

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("requests==2.19.0\n")
    monkeypatch.delenv("MLSECOPS_ADVISORY_DB", raising=False)
    monkeypatch.setenv("MLSECOPS_OSV_URL", "http://127.0.0.1:9/v1/query")  # nothing listens
    done = cli(["audit-deps", "--requirements", requirements, "--timeout", "2"])
    assert_usage_error(done, "127.0.0.1:9")


def test_unusable_sqlite_tracking_uri_fails_fast(tmp_path: Path, cli: Run) -> None:
    from mlsecops_provider.core.promotion.signing import ensure_demo_keys

    ensure_demo_keys(tmp_path)
    key = tmp_path / "keys" / "promotion.pub.pem"
    uri = f"sqlite:///{tmp_path}/no/such/folder/mlflow.db"
    for command in (["verify-promotion"], ["rollback"]):
        started = time.monotonic()
        argv = [*command, "--registered-model", "m", "--public-key", key, "--tracking-uri", uri]
        assert_usage_error(cli(argv), "does not exist")
        assert time.monotonic() - started < 10


def test_audit_verify_log_must_exist(tmp_path: Path, cli: Run) -> None:
    assert_usage_error(
        cli(["audit", "verify", "--log", tmp_path / "none.jsonl"]), "no such audit log"
    )


def test_console_script_is_installed() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mlsecops"), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "demo-data" in done.stdout


def test_a_shared_flag_means_the_same_everywhere() -> None:
    """--policy, --report, --label, --exclude, --public-key, --tracking-uri: one dest, metavar."""
    import argparse

    def walk(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found += [sub, *walk(sub)]
        return found

    shared = ("--policy", "--report", "--label", "--exclude", "--public-key", "--tracking-uri")
    seen: dict[str, set[tuple[str, str | None]]] = {flag: set() for flag in shared}
    for parser in walk(cli_parser.build_parser()):
        for action in parser._actions:
            for flag in set(action.option_strings) & set(shared):
                seen[flag].add((action.dest, str(action.metavar)))
    for flag, spellings in seen.items():
        assert len(spellings) <= 1, f"{flag} differs between subcommands: {spellings}"
    assert seen["--public-key"] == {("public_key", "PEM")}
