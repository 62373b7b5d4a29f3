"""The installed distribution: provider metadata, plugin and console script entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

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


def test_wheel_holds_every_package_and_the_assets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(tmp_path), str(root)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("airflow_provider_mlsecops-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "core/evidence.py",
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
