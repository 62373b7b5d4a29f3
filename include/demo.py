"""``make demo``: generate data, run ``secure_training`` twice with ``dag.test()``, summarise.

Run 1 trains on the first batch and its signed promotion makes the first champion; run 2
trains on a newer batch and is promoted (or refused) against that champion. The demo ends as
a consumer would: ``mlsecops verify-promotion`` on the champion, then
``mlsecops audit verify``. Everything lands under ``MLSECOPS_HOME`` unless the standard
variables point elsewhere (e.g. ``MLFLOW_TRACKING_URI`` at a tracking server).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from mlsecops_provider.include.environment import configure

BATCHES = (("credit_batch_001.parquet", 7), ("credit_batch_002.parquet", 11))
DAG_ID = "secure_training"


def prepare(home: Path) -> list[str]:
    """Write the demo batches (deterministic) and migrate the Airflow metadata DB."""
    from mlsecops_provider.core.data.datasets import write_table
    from mlsecops_provider.include.generator import generate

    uris = []
    for name, seed in BATCHES:
        ref = write_table(generate(2000, seed), (home / "incoming" / name).as_uri())
        uris.append(ref.uri)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return uris


def ensure_keys(home: Path) -> None:
    """The demo's promotion key pair (git-ignored, under MLSECOPS_HOME/keys)."""
    from mlsecops_provider.core.promotion.signing import ensure_demo_keys

    pair = ensure_demo_keys(home)
    print(f"signing key id {pair.key_id} (public key {pair.public_path})")


def verify_champion(home: Path, model_name: str = "mlsecops-demo") -> bool:
    """What a consumer runs before loading the champion, then the audit chain."""
    from mlsecops_provider.core.cli import main as cli

    ok = True
    public_key = str(home / "keys" / "promotion.pub.pem")
    for args in (
        ["verify-promotion", "--registered-model", model_name, "--alias", "champion"]
        + ["--public-key", public_key],
        ["audit", "verify"],
    ):
        print(f"\n$ mlsecops {' '.join(args)}")
        ok = cli(args) == 0 and ok
    return ok


def run_dag(source_uri: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(DAG_ID)
    if dag is None:
        raise SystemExit(f"DAG {DAG_ID!r} not found in {bag.dag_folder}")
    return dag.test(run_conf={"source_uri": source_uri})


def summarise(dag_run: Any) -> dict[str, Any]:
    """What a reader wants after a run: tasks, gates, MLflow run, model and alias."""
    from mlsecops_provider.core.settings import Settings
    from mlsecops_provider.core.tracking.lineage import TAG_GATE_PREFIX, LineageRecorder, RunKey
    from mlsecops_provider.core.tracking.registry import CHAMPION, alias_version

    settings = Settings.from_env()
    lineage = LineageRecorder(settings)
    mlflow_run_id = lineage.run_for(RunKey(DAG_ID, dag_run.run_id))
    run = lineage.client.get_run(mlflow_run_id)
    tags = run.data.tags
    gates = {k[len(TAG_GATE_PREFIX) :]: v for k, v in tags.items() if k.startswith(TAG_GATE_PREFIX)}
    gates = {k: v for k, v in gates.items() if "." not in k}
    instances = sorted(dag_run.get_task_instances(), key=lambda ti: str(ti.start_date))
    tasks = {ti.task_id: str(ti.state) for ti in instances}
    model = _model_summary(lineage, mlflow_run_id)
    if model:
        model["champion_version"] = alias_version(lineage.client, model["name"], CHAMPION)
    return {
        "dag_run": dag_run.run_id,
        "state": str(dag_run.state),
        "tasks": tasks,
        "gates": gates,
        "mlflow_run_id": mlflow_run_id,
        "model": model,
        "promotion": tags.get("mlsecops.gate.promotion"),
    }


def _model_summary(lineage: Any, mlflow_run_id: str) -> dict[str, Any] | None:
    versions = lineage.client.search_model_versions(f"run_id = '{mlflow_run_id}'")
    if not versions:
        return None
    version = max(versions, key=lambda v: int(v.version))
    return {"name": version.name, "version": str(version.version)}


def print_summary(summary: dict[str, Any]) -> None:
    print(f"\nDAG run   {summary['dag_run']}: {summary['state']}")
    for task, state in summary["tasks"].items():
        print(f"  task    {task:<24} {state}")
    for gate, verdict in sorted(summary["gates"].items()):
        print(f"  gate    {gate:<24} {verdict}")
    print(f"  MLflow run      {summary['mlflow_run_id']}")
    model = summary["model"]
    if model:
        print(f"  model version   {model['name']} v{model['version']}")
        print(
            f"  champion alias  {model['name']}@champion -> v{model['champion_version']}"
            f" (promotion {summary['promotion'] or 'not run'})"
        )


def main() -> int:
    import os

    # The summary is the demo's output; task logs stay quiet unless asked for.
    verbose = bool(os.environ.get("MLSECOPS_DEMO_VERBOSE"))
    level = "INFO" if verbose else "WARNING"
    if not verbose:
        import warnings

        warnings.simplefilter("ignore")
        os.environ.setdefault("PYTHONWARNINGS", "ignore")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", level)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    home = configure()

    print(f"MLSECOPS_HOME={home}\nMLFLOW_TRACKING_URI={os.environ['MLFLOW_TRACKING_URI']}")
    ensure_keys(home)
    uris = prepare(home)
    ok = True
    for uri in uris:
        print(f"\n=== secure_training on {uri}")
        summary = summarise(run_dag(uri))
        print_summary(summary)
        ok = ok and summary["state"] == "success"
    ok = verify_champion(home) and ok
    print(
        "\nNext: browse MLflow with\n"
        f"  .venv/bin/mlflow ui --backend-store-uri {os.environ['MLFLOW_TRACKING_URI']} "
        "--host 127.0.0.1\n"
        "and the Airflow UI with `make ui` (http://127.0.0.1:8080)."
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
