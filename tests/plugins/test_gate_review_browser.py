"""End to end: the real api-server, a real login, the gate review in headless Chromium.

A demo run of ``secure_training`` (``dag.test()``) and the review DAGs are in the metadata DB;
``airflow api-server`` serves them on 127.0.0.1 under the simple auth manager; Playwright
(``playwright-core`` from npm, driving Debian's ``/usr/bin/chromium``) logs in through the
auth manager's login page and reads the "Security gates" page and the DAG run tab.
Set ``GATE_REVIEW_SCREENSHOTS`` (e.g. ``docs``) to keep the screenshots.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.conftest import CHANGED_MODEL, PASSWORDS, ReviewRuns, auth_environment

pytestmark = pytest.mark.slow
BROWSER_DIR = Path(__file__).parent / "browser"
CHROMIUM = Path("/usr/bin/chromium")
USER = "reviewer"


def _require_browser() -> None:
    missing = [
        str(p)
        for p in (CHROMIUM, BROWSER_DIR / "node_modules" / "playwright-core")
        if not p.exists()
    ]
    if shutil.which("node") is None:
        missing.append("node")
    if missing:
        reason = f"browser test needs {', '.join(missing)} (see `make browser-deps`)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


MODEL = "mlsecops-review-e2e"
SCREENSHOTS = (
    "gate-review.png",
    "gate-review-run-tab.png",
    "gate-review-run.png",
    "model-inventory.png",
)


@pytest.fixture(scope="module")
def demo_run(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Two finished secure_training runs, as ``make demo`` does (the second one is compared
    with the champion the first one made); its own model name: other tests count versions."""
    from airflow.dag_processing.dagbag import DagBag

    from mlsecops_provider.core.data.datasets import write_table
    from mlsecops_provider.core.promotion.signing import ensure_demo_keys
    from mlsecops_provider.core.settings import Settings
    from mlsecops_provider.include.generator import generate

    ensure_demo_keys(Settings.from_env().home)  # the promotion gate signs with it
    incoming = tmp_path_factory.mktemp("incoming")
    sources = [
        write_table(generate(600, seed=seed), (incoming / f"b{seed}.parquet").as_uri())
        for seed in (5, 9)
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLSECOPS_MODEL_NAME", MODEL)
        dags = Path(__file__).resolve().parents[2] / "dags"
        dag = DagBag(dag_folder=str(dags)).get_dag("secure_training")
        runs = [dag.test(run_conf={"source_uri": source.uri}) for source in sources]
    return runs[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"api-server exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"api-server did not become healthy: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def api_server(demo_run: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``airflow api-server`` on a free port of 127.0.0.1, with the test users."""
    tmp = tmp_path_factory.mktemp("api-server")
    port = _free_port()
    env = {**os.environ, **auth_environment(tmp)}
    log = tmp / "api-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "-H", "127.0.0.1"]
            + ["--port", str(port), "--workers", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, log)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _browse(base: str, dag_run: Any, tmp: Path) -> dict[str, Any]:
    profile = tmp / "chromium-profile"
    profile.mkdir()
    config = {
        "base": base,
        "username": USER,
        "password": PASSWORDS[USER],
        "dagId": dag_run.dag_id,
        "runId": dag_run.run_id,
        "screenshot": str(tmp / "gate-review.png"),
        "runScreenshot": str(tmp / "gate-review-run-tab.png"),
        "runPageScreenshot": str(tmp / "gate-review-run.png"),
        "modelsScreenshot": str(tmp / "model-inventory.png"),
        "userDataDir": str(profile),
        "chromium": str(CHROMIUM),
    }
    done = subprocess.run(
        ["node", "review.mjs", json.dumps(config)],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _api_gates(base: str, dag_run: Any) -> dict[str, tuple[str, str]]:
    """The run's gates as the JSON API (same server, token from the auth manager) lists them."""
    import httpx

    login = {"username": USER, "password": PASSWORDS[USER]}
    token = httpx.post(f"{base}/auth/token", json=login).json()["access_token"]
    params = {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id}
    auth = {"Authorization": f"Bearer {token}"}
    response = httpx.get(f"{base}/mlsecops/api/gates", params=params, headers=auth)
    (run,) = response.json()["runs"]
    promotion = next((g for g in run["gates"] if g["gate"] == "promotion"), None)
    if promotion and promotion["details"].get("evidence_sha256"):  # the signed record's link
        record = {k: promotion["details"][f"evidence_{k}"] for k in ("uri", "sha256")}
        signed = httpx.get(f"{base}/mlsecops/evidence", params=record, headers=auth)
        assert signed.status_code == 200, signed.text
    return {g["gate"]: (g["verdict"], g["integrity"]) for g in run["gates"]}


def test_gate_review_in_chromium(
    api_server: str, demo_run: Any, review_runs: ReviewRuns, tmp_path: Path
) -> None:
    import httpx

    assert httpx.get(f"{api_server}/mlsecops/api/gates").status_code == 401
    seen = _browse(api_server, demo_run, tmp_path)
    assert "error" not in seen, (seen.get("error"), seen.get("url"))
    assert seen["anonymousStatus"] == 401 and seen["heading"] == "Security gates"
    shown = {
        g["gate"]: (g["verdict"], g["integrity"])
        for g in seen["gates"]
        if g["dag"] == "secure_training" and g["run"].endswith(demo_run.run_id)
    }
    assert shown == _api_gates(api_server, demo_run)
    assert shown["dependency_audit"] == ("pass", "verified")
    assert shown["provenance"] == ("pass", "verified")
    tab = {g["gate"]: g["verdict"] for g in seen["runTabGates"]}
    assert tab == {gate: verdict for gate, (verdict, _) in shown.items()}
    alpha = {g["task"]: g["verdict"] for g in seen["gates"] if g["dag"] == "review_alpha"}
    assert alpha["tamper_me"] == "tampered" and alpha["scan"] == "warn"
    assert seen["scriptElements"] == 0 and seen["dialogs"] == []  # hostile findings stay text
    _check_run_page(seen["runPage"], api_server, demo_run)
    _check_inventory(seen["models"], "was promoted" in seen["runPage"]["decision"])
    keep = os.environ.get("GATE_REVIEW_SCREENSHOTS")
    if keep:
        for name in SCREENSHOTS:
            shutil.copy(tmp_path / name, Path(keep) / name)


def _api_run(base: str, dag_run: Any) -> dict[str, Any]:
    import httpx

    login = {"username": USER, "password": PASSWORDS[USER]}
    token = httpx.post(f"{base}/auth/token", json=login).json()["access_token"]
    params = {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id}
    auth = {"Authorization": f"Bearer {token}"}
    (run,) = httpx.get(f"{base}/mlsecops/api/gates", params=params, headers=auth).json()["runs"]
    return dict(run)


def _check_run_page(seen: dict[str, Any], base: str, dag_run: Any) -> None:
    """Gates in the DAG's order, the decision in words, at least one picture, no script."""
    run = _api_run(base, dag_run)
    order = [step["task_id"] for step in run["pipeline"]]
    assert seen["pipeline"] == order
    for earlier, later in (("ingest", "validate_data"), ("validate_data", "train"),
                           ("train", "scan_model"), ("shadow_evaluation", "promote")):  # fmt: skip
        assert order.index(earlier) < order.index(later), order
    gates = [g["task"] for g in seen["gates"]]
    assert gates == [t for t in order if t in gates]  # pipeline order, not the alphabet
    assert gates != sorted(gates)
    assert "Candidate vs champion: relative change per metric" in seen["pictures"], seen
    assert f"{MODEL} v" in seen["decision"] and "Audit entry" in seen["decision"]
    assert seen["scriptElements"] == 0


def _check_inventory(models: list[dict[str, Any]], second_promoted: bool) -> None:
    """The demo's champion verified; the champion whose artifact changed is not, with why."""
    by_name = {m["name"]: {a["alias"]: a for a in m["aliases"]} for m in models}
    champion = by_name[MODEL]["@champion"]
    assert champion["verified"] == "verified", champion
    if second_promoted:  # run 2 became champion: run 1 is the previous champion, verified
        assert by_name[MODEL]["@previous-champion"]["verified"] == "verified"
    changed = by_name[CHANGED_MODEL]["@champion"]
    assert changed["verified"] == "not verified" and "model artifact changed" in changed["reason"]
