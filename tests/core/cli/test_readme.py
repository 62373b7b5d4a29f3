"""The README is true: its marked shell blocks run, its CLI lines exist, its variables are read.

- A code block right after ``<!-- readme-test -->`` runs line by line (``\\`` continues a
  line); ``# exit N`` at the end of a command is its expected exit code (default 0), and
  ``.mlsecops/try/`` is a temporary folder.
- Every ``mlsecops COMMAND --flag`` the README shows names a real subcommand and real flags.
- Every environment variable the source reads is in the configuration table, and every
  variable of the table is read somewhere.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()
SOURCE_DIRS = ("core", "operators", "sensors", "plugins", "provider", "include", "dags")
MARK = "<!-- readme-test -->"
cli_parser = importlib.import_module("mlsecops_provider.core.cli.parser")


def code_blocks(text: str) -> Iterator[tuple[bool, str]]:
    """``(marked, body)`` of every fenced block."""
    for match in re.finditer(r"(?m)^(<!-- readme-test -->\n)?```[a-z]*\n(.*?)^```", text, re.S):
        yield bool(match.group(1)), match.group(2)


def commands(body: str) -> Iterator[str]:
    """Logical lines: ``\\`` continuations joined, blank lines and comments skipped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def test_marked_blocks_run_as_written(tmp_path: Path) -> None:
    marked = [body for is_marked, body in code_blocks(README) if is_marked]
    assert marked, f"no block marked {MARK} in the README"
    script = str(Path(sys.executable).parent / "mlsecops")
    env = {**os.environ, "MLSECOPS_HOME": str(tmp_path / "home")}
    for body in marked:
        for line in commands(body):
            command, _, comment = line.partition("#")
            expected = re.match(r"\s*exit (\d)", comment)
            argv = shlex.split(command.replace(".mlsecops/try/", f"{tmp_path}/"))
            assert argv[0] in (".venv/bin/mlsecops", "mlsecops"), line
            done = subprocess.run(
                [script, *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True,
                timeout=600, check=False,
            )  # fmt: skip
            want = int(expected.group(1)) if expected else 0
            assert done.returncode == want, f"{line}\n{done.stdout}\n{done.stderr}"
            if want == 2:
                assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def subparsers() -> dict[str, argparse.ArgumentParser]:
    """``{"validate": parser, "audit verify": parser, ...}`` from the real parser."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[" ".join((*path, name))] = sub
                    walk(sub, (*path, name))

    walk(cli_parser.build_parser(), ())
    return found


def test_every_cli_line_names_real_subcommands_and_flags() -> None:
    parsers = subparsers()
    top = {s for a in cli_parser.build_parser()._actions for s in a.option_strings}
    shown = 0
    for _, body in code_blocks(README):
        for line in commands(body):
            words = line.split("#")[0].split()
            if not words or words[0] not in ("mlsecops", ".venv/bin/mlsecops", "$"):
                continue
            words = words[1:] if words[0] != "$" else words[2:]
            names = [w for w in words if not w.startswith(("-", "[", "(", "|"))]
            command = next(
                (c for c in (" ".join(names[:2]), names[0] if names else "") if c in parsers),
                None,
            )
            flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", line.split("#")[0]))
            if command is None:
                assert not names or names[0] in ("COMMAND",), f"unknown subcommand: {line}"
                assert flags <= top | {"--help"}, line
                continue
            known = {s for a in parsers[command]._actions for s in a.option_strings}
            assert flags - {"--help"} <= known | top, f"{line}: {sorted(flags - known - top)}"
            shown += 1
    assert shown >= 10


def variables_read() -> set[str]:
    """Names the source reads from the environment (a literal name in a read call)."""
    pattern = re.compile(
        r"""(?:environ(?:\.get)?\(|environ\[|getenv\(|env\.get\(|_ENV\s*=\s*)\s*["']([A-Z][A-Z0-9_]+)["']"""
    )
    names: set[str] = set()
    for folder in SOURCE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            names.update(pattern.findall(path.read_text()))
    return names


def table_variables() -> set[str]:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))


def test_every_variable_the_code_reads_is_documented() -> None:
    read, documented = variables_read(), table_variables()
    ours = {n for n in read if n.startswith(("MLSECOPS_", "MLFLOW_", "GX_"))}
    ours |= {n for n in read if n.startswith("AIRFLOW__")} - {"AIRFLOW__API__BASE_URL"}
    assert ours <= documented, (
        f"read but not in the configuration table: {sorted(ours - documented)}"
    )
    assert "MLSECOPS_POLICY" in read and "MLSECOPS_DEBUG" in read


@pytest.mark.parametrize("name", sorted(table_variables()))
def test_every_documented_variable_is_read(name: str) -> None:
    sources = "".join(
        p.read_text() for folder in SOURCE_DIRS for p in (ROOT / folder).rglob("*.py")
    )
    passphrase = name.endswith("_PASSPHRASE") and "_PASSPHRASE" in sources
    in_policy = name in (ROOT / "include" / "policies" / "default.yaml").read_text()
    assert name in sources or passphrase or in_policy, f"{name} is documented but never read"


def diagram_chains() -> list[list[str]]:
    section = README.split("What runs in `dags/secure_training.py`", 1)[1]
    body = section.split("```\n", 2)[1]
    return [[t.strip() for t in line.split("─►")] for line in body.splitlines() if "─►" in line]


def test_the_dag_diagram_has_the_dags_order() -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags" / "secure_training.py")).dags["secure_training"]
    chains = diagram_chains()
    shown = {t.strip("[]") for chain in chains for t in chain}
    assert set(dag.task_ids) <= shown, f"tasks not in the diagram: {set(dag.task_ids) - shown}"
    for chain in chains:
        present = [t for t in chain if t in dag.task_ids]  # [optional] tasks may be absent
        for before, after in zip(present, present[1:], strict=False):
            assert after in dag.get_task(before).get_flat_relative_ids(upstream=False), (
                f"README shows {before} ─► {after}, but {after} is not downstream of {before}"
            )


def test_mlsecops_policy_reaches_every_gate_of_the_example_dags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from mlsecops_provider.core.settings import packaged_file
    from mlsecops_provider.operators.base import MLSecOpsOperator

    policy = tmp_path / "policy.yaml"
    policy.write_bytes(packaged_file("policies", "default.yaml").read_bytes())
    monkeypatch.setenv("MLSECOPS_POLICY", str(policy))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    gates = 0
    for dag_id in ("secure_training", "retrain_on_drift"):
        for task in bag.dags[dag_id].tasks:
            if isinstance(task, MLSecOpsOperator):  # explicit policy_path, else the variable
                assert task.load_policy().source == str(policy), f"{dag_id}.{task.task_id}"
                gates += 1
            elif hasattr(task, "policy_path"):  # sensors: the DAG passes it
                assert task.policy_path == str(policy), f"{dag_id}.{task.task_id}"
                gates += 1
    assert gates >= 8
