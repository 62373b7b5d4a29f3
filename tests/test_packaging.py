"""The installed distribution: provider metadata, plugin and console script entry points."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

from mlsecops_provider.get_provider_info import get_provider_info


def test_entry_points_resolve() -> None:
    providers = entry_points(group="apache_airflow_provider")
    ours = [ep for ep in providers if ep.value.startswith("mlsecops_provider.")]
    assert ours and ours[0].load()()["package-name"] == "airflow-provider-mlsecops"
    plugins = [ep for ep in entry_points(group="airflow.plugins") if ep.name == "mlsecops"]
    assert plugins and plugins[0].load().name == "mlsecops"


def test_provider_info_modules_import() -> None:
    import importlib

    info = get_provider_info()
    for group in info["operators"]:
        for module in group["python-modules"]:
            importlib.import_module(module)
    for link in info["extra-links"]:
        module, _, name = link.rpartition(".")
        assert hasattr(importlib.import_module(module), name)


def test_airflow_lists_the_provider() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    start = done.stdout.index("[")
    names = {p["package_name"] for p in json.loads(done.stdout[start:])}
    assert "airflow-provider-mlsecops" in names


ROOT = Path(__file__).resolve().parents[1]


def _wheel(tmp_path: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("airflow_provider_mlsecops-*.whl")
    return wheel


def test_wheel_holds_every_package_and_the_assets(tmp_path: Path) -> None:
    names = set(zipfile.ZipFile(_wheel(tmp_path)).namelist())
    for module in (
        "core/evidence.py",
        "core/scan/pickle/scanner.py",
        "core/supply_chain/source.py",
        "connections.py",
        "core/cli/main.py",
        "operators/promotion.py",
        "sensors/triggers/new_dataset.py",
        "plugins/gate_review.py",
        "include/policies/default.yaml",
        "include/suites/credit_risk.json",
        "get_provider_info.py",
    ):
        assert f"mlsecops_provider/{module}" in names, module
    assert not any(n.startswith(("dags/", "tests/")) for n in names)


def test_every_source_package_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    for top in ("core", "operators", "sensors", "plugins", "include"):
        for init in (ROOT / top).rglob("__init__.py"):
            name = ".".join(("mlsecops_provider", *init.parent.relative_to(ROOT).parts))
            assert name in listed, f"{name} is missing from [tool.setuptools] packages"


def test_installed_wheel_imports_from_the_repository_root(tmp_path: Path) -> None:
    """From the checkout's root, the installed package wins and ``import core`` is refused."""
    site = tmp_path / "site"
    zipfile.ZipFile(_wheel(tmp_path)).extractall(site)
    # -S: no venv site-packages (and no editable hook); the extracted wheel is the install.
    code = (
        f"import sys; sys.path.append({str(site)!r})\n"
        "import mlsecops_provider.operators, mlsecops_provider.core.evidence as e\n"
        f"assert e.__file__.startswith({str(site)!r}), e.__file__\n"
    )
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    for second_way_in in ("core", "operators", "sensors", "plugins", "include"):
        done = subprocess.run(
            [sys.executable, "-S", "-c", f"import {second_way_in}"], cwd=ROOT, capture_output=True
        )
        assert done.returncode != 0 and b"import this package as" in done.stderr, second_way_in
