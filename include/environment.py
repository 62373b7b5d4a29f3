"""Embedded defaults for running the project on one machine (demo, tests, ``make ui``).

Every value is a default only: a variable already set in the environment wins, so the same
code runs against a real deployment (``AIRFLOW_HOME``, ``MLFLOW_TRACKING_URI``,
``MLSECOPS_EVIDENCE_URI``, ``AIRFLOW_CONN_*``, ``AWS_*``).
"""

from __future__ import annotations

import os
from pathlib import Path

from mlsecops_provider.core.errors import ConfigError
from mlsecops_provider.core.settings import mlsecops_home as default_home

EXAMPLE_DAG = Path("dags") / "secure_training.py"


def dags_folder() -> Path:
    """The example DAGs: the one thing that needs the project checkout, not the package.

    ``AIRFLOW__CORE__DAGS_FOLDER`` wins; else the checkout that holds the working directory
    (or this file, in an editable install). A wheel installed elsewhere has no DAGs folder.
    """
    configured = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER")
    if configured:
        return Path(configured)
    here = Path.cwd().resolve()
    for root in (here, *here.parents, Path(__file__).resolve().parent.parent):
        if (root / EXAMPLE_DAG).is_file() and (root / "pyproject.toml").is_file():
            return root / "dags"
    raise ConfigError(
        f"no project checkout with {EXAMPLE_DAG} above {here}: run from the repository or set "
        "AIRFLOW__CORE__DAGS_FOLDER"
    )


def configure(home: str | Path | None = None) -> Path:
    """Set the embedded defaults in ``os.environ``; call before Airflow is imported."""
    mlsecops_home = Path(home).resolve() if home else default_home()
    os.environ["MLSECOPS_HOME"] = str(mlsecops_home)
    airflow_home = Path(os.environ.setdefault("AIRFLOW_HOME", str(mlsecops_home / "airflow")))
    plugins = airflow_home / "plugins"  # ours load through the entry point
    plugins.mkdir(parents=True, exist_ok=True)
    defaults = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "MLFLOW_TRACKING_URI": f"sqlite:///{mlsecops_home}/mlflow.db",
        "GX_ANALYTICS_ENABLED": "false",
        "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    return mlsecops_home


def main(argv: list[str]) -> int:
    """``python -m mlsecops_provider.include.environment CMD ...``: run CMD with the defaults."""
    if not argv:
        print("usage: python -m mlsecops_provider.include.environment COMMAND [ARGS...]")
        return 2
    configure()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
