"""Benchmark of ``mlsecops serve`` against ``mlflow models serve`` (a script, not a test).

Run: ``.venv/bin/python bench/bench_serving.py [--seconds 5] [--rounds 5] [--clients 4]``.

Trains the demo's classifier (the project's pipeline on the demo generator's data), saves it
as an MLflow skops model in a temporary folder, and starts three servers on 127.0.0.1, each
a single uvicorn process: (1) ``mlflow models serve --env-manager local`` (MLflow's
scoring server), (2) ours without a shadow, (3) ours with the same model mirrored as the
shadow (``--sample-rate`` of the requests; prediction log in the temporary folder). All
three run at once (an idle server uses no CPU) and are loaded in turn, ``--rounds`` times
interleaved, so that the load other jobs put on the machine falls on all three alike. Each
gets the same closed loop of ``--clients`` threads posting ``dataframe_split`` requests of
``--rows`` rows for ``--seconds`` after a one-second warm-up; every round's figures are
printed, then side by side: requests/s and server CPU per request (the process tree: the
shadow's process counts) as the median of the rounds, p50 and p99 latency (ms) over every
request of every round (a 5 s round has a few hundred requests: its own p99 is its 4th or
5th slowest, too noisy to compare), and the load average. Ours checks the training profile
and writes the prediction log on every request; MLflow's does neither. The answers of the
three are compared byte for byte first.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NUMERIC = ("age", "annual_income", "loan_amount", "loan_term_months", "credit_history_months",
           "num_open_accounts", "debt_to_income")  # fmt: skip
CATEGORICAL = ("employment_type", "region", "purpose")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_model(folder: Path) -> Any:
    """The demo classifier saved as an MLflow skops model; returns the training frame."""
    import mlflow

    from mlsecops_provider.core.training.model import TrainingConfig, train_classifier
    from mlsecops_provider.include.generator import LABEL, generate

    frame = generate(2000, seed=7)
    config = TrainingConfig(LABEL, NUMERIC, CATEGORICAL)
    outcome = train_classifier(frame, config)
    features = frame[list(config.features)]
    mlflow.sklearn.save_model(
        outcome.model, str(folder / "model"), serialization_format="skops",
        input_example=features.head(5), pip_requirements=["scikit-learn"],
    )  # fmt: skip
    features.to_parquet(folder / "train.parquet")
    return features


def serve_ours(
    model_dir: str,
    train: str,
    port: int,
    shadow: bool,
    log_dir: str,
    sample_rate: float = 1.0,
    isolate: bool = True,
) -> None:
    """Child process: our app over the saved model (no registry: the bench measures serving)."""
    import pandas as pd

    from mlsecops_provider.core.hashing import hash_path
    from mlsecops_provider.core.serving.app import create_app
    from mlsecops_provider.core.serving.config import ServingConfig
    from mlsecops_provider.core.serving.loading import ServedModel, pyfunc_from_files
    from mlsecops_provider.core.serving.prediction_log import PredictionLog
    from mlsecops_provider.core.serving.profile import build_profile
    from mlsecops_provider.core.serving.server import run
    from mlsecops_provider.core.serving.service import ServingService

    root = Path(model_dir)
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    digest = hash_path(root).root_digest

    def model(role: str, version: str) -> ServedModel:
        pyfunc = pyfunc_from_files(files, role)
        return ServedModel(role, "bench", version, role, digest, pyfunc, files)

    from mlsecops_provider.core.serving.isolated import ShadowProcess

    champion = model("champion", "1")
    config = ServingConfig(rate_per_second=1e6, burst=1_000_000, shadow_sample_rate=sample_rate)
    runner = ShadowProcess(files, "shadow") if shadow and isolate else None
    service = ServingService(
        champion,
        fallback=model("fallback", "0"),
        shadow=model("shadow", "2") if shadow else None,
        profile=build_profile(pd.read_parquet(train), champion.columns or ()),
        config=config,
        prediction_log=PredictionLog(Path(log_dir).as_uri(), batch_rows=config.log_batch_rows),
        shadow_runner=runner,
    )
    run(create_app(service), "127.0.0.1", port)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode()[-500:]}")  # type: ignore[union-attr]
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children (mlflow runs uvicorn below)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def load(
    url: str, body: bytes, clients: int, seconds: float, pid: int | None = None
) -> dict[str, float]:
    """Closed loop: ``clients`` threads post for ``seconds`` (after a 1 s warm-up); with
    ``pid``, also the server's CPU milliseconds per request (less sensitive to other load)."""
    import requests

    latencies: list[float] = []
    lock = threading.Lock()
    start = time.monotonic() + 1.0
    stop = start + seconds

    def worker() -> None:
        session = requests.Session()
        headers = {"Content-Type": "application/json"}
        mine = []
        while (now := time.monotonic()) < stop:
            began = time.perf_counter()
            response = session.post(url, data=body, headers=headers, timeout=30)
            elapsed = time.perf_counter() - began
            if response.status_code != 200:
                raise RuntimeError(f"{url}: HTTP {response.status_code} {response.text[:200]}")
            if now >= start:
                mine.append(elapsed)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, start - time.monotonic()))
    cpu_before = tree_cpu(pid) if pid else 0.0
    for thread in threads:
        thread.join()
    cpu = tree_cpu(pid) - cpu_before if pid else float("nan")
    latencies.sort()
    return {
        "rps": len(latencies) / seconds,
        "p50": statistics.median(latencies) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "cpu_ms": cpu * 1000 / max(1, len(latencies)),
        "latencies": latencies,
    }


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def start(
    kind: str, folder: Path, port: int, sample_rate: float, thread: bool = False
) -> subprocess.Popen[bytes]:
    bin_dir = str(Path(sys.executable).parent)  # mlflow runs `uvicorn` from PATH
    env = {
        **os.environ,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    if kind == "mlflow":
        command = [
            str(Path(sys.executable).parent / "mlflow"), "models", "serve",
            "-m", str(folder / "model"), "--env-manager", "local",
            "-h", "127.0.0.1", "-p", str(port), "-w", "1",
        ]  # fmt: skip
    else:
        command = [
            sys.executable, __file__, "--child", kind, "--folder", str(folder), "--port", str(port),
            "--sample-rate", str(sample_rate), *(["--shadow-thread"] if thread else []),
        ]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--sample-rate", type=float, default=1.0, help="shadow sampling rate")
    parser.add_argument(
        "--shadow-thread", action="store_true", help="shadow on a thread, not its own process"
    )
    parser.add_argument("--child", choices=["ours", "ours+shadow"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder = Path(args.folder)
        log_dir = folder / f"log-{args.child}"
        serve_ours(str(folder / "model"), str(folder / "train.parquet"), args.port,
                   args.child == "ours+shadow", str(log_dir), args.sample_rate,
                   not args.shadow_thread)  # fmt: skip
        return
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        folder = Path(tmp)
        features = build_model(folder)
        sample = features.sample(args.rows, random_state=1)
        body = json.dumps({"dataframe_split": json.loads(sample.to_json(orient="split"))}).encode()
        results: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
        answers: dict[str, str] = {}
        processes: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
        try:
            for kind in KINDS:  # all three up at once; idle servers use no CPU
                port = free_port()
                process = start(kind, folder, port, args.sample_rate, args.shadow_thread)
                processes[kind] = (process, f"http://127.0.0.1:{port}")
            for kind, (process, base) in processes.items():
                wait_ready(f"{base}/health", process)
                answers[kind] = post(f"{base}/invocations", body)
            for _ in range(args.rounds):  # interleaved: each round loads each server in turn
                for kind, (process, base) in processes.items():
                    url = f"{base}/invocations"
                    results[kind].append(load(url, body, args.clients, args.seconds, process.pid))
        finally:
            for process, _ in processes.values():
                process.terminate()
            for process, _ in processes.values():
                process.wait(timeout=60)
        report(results, answers, args)
        shadow_outcomes(folder / "log-ours+shadow")


def shadow_outcomes(log_dir: Path) -> None:
    """What the shadow did with the mirrored requests (from the server's prediction log)."""
    from mlsecops_provider.core.serving.prediction_log import read_prediction_log

    logged = read_prediction_log(log_dir.as_uri())
    counts = logged.drop_duplicates("request_id")["shadow_status"].value_counts().to_dict()
    print(f"shadow outcome per logged request: {counts} (of {logged['request_id'].nunique()})")


KINDS = ("mlflow", "ours", "ours+shadow")


def post(url: str, body: bytes) -> str:
    import requests

    headers = {"Content-Type": "application/json"}
    return str(requests.post(url, data=body, headers=headers, timeout=30).text)


def report(runs: dict[str, list[dict[str, float]]], answers: dict[str, str], args: Any) -> None:
    same = len(set(answers.values())) == 1
    load_now = os.getloadavg()[0]
    print(f"clients {args.clients}, rows/request {args.rows}, {args.seconds:g} s each, "
          f"{args.rounds} interleaved round(s), shadow sampling {args.sample_rate:g}; "
          f"load average {load_now:.2f} on {os.cpu_count()} cores (shared machine)")  # fmt: skip
    for number in range(args.rounds):
        m, o, sh = (runs[k][number] for k in KINDS)
        print(f"  round {number + 1}: req/s {m['rps']:.1f} / {o['rps']:.1f} / {sh['rps']:.1f}, "
              f"p99 ms {m['p99']:.1f} / {o['p99']:.1f} / {sh['p99']:.1f}, CPU ms/req "
              f"{m['cpu_ms']:.2f} / {o['cpu_ms']:.2f} / {sh['cpu_ms']:.2f}")  # fmt: skip
    fields = ("rps", "cpu_ms")
    results = {k: {f: statistics.median(r[f] for r in v) for f in fields} for k, v in runs.items()}
    for kind, rounds in runs.items():  # latency percentiles over every request of every round
        pooled = sorted(x for r in rounds for x in r["latencies"])
        results[kind].update(p50=percentile(pooled, 0.5) * 1000,
                             p99=percentile(pooled, 0.99) * 1000, requests=len(pooled))  # fmt: skip
    print(f"{'server (req/s, CPU: median of rounds;':<40}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'CPU ms/req':>12}{'requests':>10}")  # fmt: skip
    print(" latency: every request of every round)")
    for kind, f in results.items():
        name = {"mlflow": "mlflow models serve"}.get(kind, f"mlsecops serve ({kind})")
        print(f"{name:<40}{f['rps']:>8.1f}{f['p50']:>9.2f}{f['p99']:>9.2f}{f['cpu_ms']:>12.2f}"
              f"{f['requests']:>10}")  # fmt: skip
    mlflow, ours, shadow = results["mlflow"], results["ours"], results["ours+shadow"]
    print(f"ours / mlflow throughput: {ours['rps'] / mlflow['rps']:.2f}x (target >= 1.0); "
          f"server CPU per request {ours['cpu_ms'] / mlflow['cpu_ms']:.2f}x mlflow's")  # fmt: skip
    print(f"shadow adds to p99: {100 * (shadow['p99'] / ours['p99'] - 1):+.1f}% (target <= +10%)")
    print(f"answers identical byte for byte: {same} {answers['ours'][:60]}")


if __name__ == "__main__":
    main()
