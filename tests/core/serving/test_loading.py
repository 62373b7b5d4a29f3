"""``mlsecops serve`` loads only verified models from a real MLflow registry: signed
champion and fallback (real model-signing), a shadow with a passing scan of its digest;
anything else refuses to start with one line and exit 2."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.errors import SignatureError, UnsafeModelError
from mlsecops_provider.core.policy import load_policy
from mlsecops_provider.core.serving.server import ServeOptions, build_service
from tests.core.promotion.test_promotion import World, artifact_dir, world  # noqa: F401
from tests.core.serving.conftest import request_rows
from tests.core.serving.registry import build_registry, promote, register


@pytest.fixture(scope="module")
def registry(world: World) -> dict[str, Any]:  # noqa: F811
    return build_registry(world, "credit-serve")


def options(world: World, name: str, tmp_path: Path, **kw: Any) -> ServeOptions:  # noqa: F811
    return ServeOptions(
        registered_model=name,
        public_key_pem=world.keys.public_path.read_bytes(),
        log_uri=(tmp_path / "log").as_uri(),
        tracking_uri=world.settings.tracking_uri,
        **kw,
    )


@pytest.fixture()
def moved_alias(world: World, registry: dict[str, Any]) -> Iterator[Callable[[str, str], None]]:  # noqa: F811
    """Move an alias for one test and put it back afterwards."""
    from mlsecops_provider.core.tracking.registry import alias_version

    name, saved = registry["name"], {}

    def move(alias: str, version: str) -> None:
        saved.setdefault(alias, alias_version(world.client, name, alias))
        world.client.set_registered_model_alias(name, alias, version)

    yield move
    for alias, version in saved.items():
        world.client.set_registered_model_alias(name, alias, version)


def test_verified_champion_fallback_and_scanned_shadow_are_served(
    world: World,  # noqa: F811
    registry: dict[str, Any],
    tmp_path: Path,
) -> None:
    import mlflow
    import pandas as pd
    from fastapi.testclient import TestClient

    from mlsecops_provider.core.serving.app import create_app
    from mlsecops_provider.core.serving.protocol import predictions_json

    service = build_service(options(world, registry["name"], tmp_path), load_policy())
    assert (service.champion.version, service.fallback.version) == ("2", "1")  # type: ignore[union-attr]
    assert service.shadow is not None and service.shadow.version == "3"
    assert [c.name for c in service.profile.columns] == ["age", "income", "segment"]  # type: ignore[union-attr]
    rows = request_rows(5)
    with TestClient(create_app(service)) as client:
        response = client.post("/invocations", json={"dataframe_records": rows})
    mlflow.set_tracking_uri(world.settings.tracking_uri)
    reference = mlflow.pyfunc.load_model(f"models:/{registry['name']}/2")  # MLflow's own loader
    assert response.status_code == 200
    assert response.text == predictions_json(reference.predict(pd.DataFrame(rows)))
    assert response.headers["x-model-version"] == "2"


def test_shadow_without_a_scan_refuses_to_start(
    world: World,  # noqa: F811
    registry: dict[str, Any],
    tmp_path: Path,
    moved_alias: Callable[[str, str], None],
) -> None:
    moved_alias("shadow", registry["versions"][3].candidate.version)
    with pytest.raises(UnsafeModelError, match="carries no model-scan result"):
        build_service(options(world, registry["name"], tmp_path), load_policy())


def test_shadow_with_another_models_scan_refuses_to_start(
    world: World,  # noqa: F811
    registry: dict[str, Any],
    tmp_path: Path,
    moved_alias: Callable[[str, str], None],
) -> None:
    unscanned = registry["versions"][3]
    scanned_run = world.client.get_run(registry["versions"][2].run_id).data.tags
    for suffix in ("evidence_uri", "evidence_sha256"):
        key = f"mlsecops.gate.model_scan.{suffix}"
        world.client.set_model_version_tag(
            registry["name"], unscanned.candidate.version, key, scanned_run[key]
        )
    moved_alias("shadow", unscanned.candidate.version)
    try:
        with pytest.raises(UnsafeModelError, match="the scan is of sha256:"):
            build_service(options(world, registry["name"], tmp_path), load_policy())
    finally:
        for suffix in ("evidence_uri", "evidence_sha256"):
            world.client.delete_model_version_tag(
                registry["name"], unscanned.candidate.version, f"mlsecops.gate.model_scan.{suffix}"
            )


def test_fallback_alias_not_named_by_the_signed_record_refuses_to_start(
    world: World,  # noqa: F811
    registry: dict[str, Any],
    tmp_path: Path,
    moved_alias: Callable[[str, str], None],
) -> None:
    moved_alias("previous-champion", registry["versions"][2].candidate.version)
    with pytest.raises(SignatureError, match="previous"):
        build_service(options(world, registry["name"], tmp_path), load_policy())


def test_no_shadow_alias_serves_without_a_shadow(
    world: World,  # noqa: F811
    registry: dict[str, Any],
    tmp_path: Path,
) -> None:
    service = build_service(
        options(world, registry["name"], tmp_path, shadow_alias="no-such-alias"), load_policy()
    )
    assert service.shadow is None and service.mirror.submit(None, []) == "none"


def test_unverified_champion_refuses_to_start_exit_2_one_line(
    world: World,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "credit-tampered"
    version = register(world, name, 5)
    promote(world, version, f"{name}-run-1")
    with open(artifact_dir(version.candidate) / "model.skops", "ab") as handle:
        handle.write(b"\x00")
    with pytest.raises(SignatureError, match="does not verify"):
        build_service(options(world, name, tmp_path), load_policy())

    capsys.readouterr()
    code = serve_cli(world, name, tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "does not verify" in err, err


def serve_cli(world: World, name: str, tmp_path: Path) -> int:  # noqa: F811
    import argparse

    from mlsecops_provider.core.cli.serve_cmd import register as register_cmd
    from mlsecops_provider.core.errors import MLSecOpsError

    parser = argparse.ArgumentParser(prog="mlsecops")
    register_cmd(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "serve", "--registered-model", name,
            "--public-key", str(world.keys.public_path),
            "--tracking-uri", world.settings.tracking_uri,
            "--log", str(tmp_path / "log"),
        ]
    )  # fmt: skip
    try:
        return int(args.handler(args))
    except MLSecOpsError as err:  # what mlsecops main does with it
        import sys

        print(f"mlsecops serve: error: {err}", file=sys.stderr)
        return 2


def test_rollout_sets_the_shadow_only_on_a_scanned_version(
    world: World,  # noqa: F811
    registry: dict[str, Any],
    moved_alias: Callable[[str, str], None],
) -> None:
    from mlsecops_provider.core.serving.rollout import candidate, set_shadow
    from mlsecops_provider.core.tracking.registry import alias_version

    name, versions = registry["name"], registry["versions"]
    moved_alias("shadow", versions[2].candidate.version)  # restored afterwards
    found = candidate(world.settings, name, versions[3].candidate.version)
    assert found["datasets"]["training"]["rows"] == 200
    with pytest.raises(UnsafeModelError):
        set_shadow(world.settings, name, versions[3].candidate.version)
    assert alias_version(world.client, name, "shadow") == versions[2].candidate.version
    moved = set_shadow(world.settings, name, versions[2].candidate.version)
    assert len(moved["sha256"]) == 64


@pytest.mark.slow
def test_mlsecops_serve_on_uvicorn_answers_guards_logs_and_shuts_down_cleanly(
    world: World,  # noqa: F811
    registry: dict[str, Any],
    tmp_path: Path,
) -> None:
    """The real command on 127.0.0.1: token, answers, metrics, and the log flushed on exit."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import requests

    from mlsecops_provider.core.serving.prediction_log import read_prediction_log
    from mlsecops_provider.core.serving.warmup import WarmupConfig, warmup_gate

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "log"
    command = [
        sys.executable, "-m", "mlsecops_provider.core.cli.main", "serve",
        "--registered-model", registry["name"], "--public-key", str(world.keys.public_path),
        "--tracking-uri", world.settings.tracking_uri, "--port", str(port),
        "--log", str(log), "--token-env", "SERVE_TEST_TOKEN",
    ]  # fmt: skip
    env = {**os.environ, "SERVE_TEST_TOKEN": "t0ken"}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
            try:
                if requests.get(f"{base}/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        auth = {"Authorization": "Bearer t0ken"}
        payload = {"dataframe_records": request_rows(3)}
        assert requests.post(f"{base}/invocations", json=payload, timeout=5).status_code == 401
        for i in range(30):
            answer = requests.post(
                f"{base}/invocations", json=payload, headers={**auth, "X-Request-Id": f"u{i}"},
                timeout=10,
            )  # fmt: skip
            assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "2"
        metrics = requests.get(f"{base}/metrics", timeout=5).text
        assert 'mlsecops_serving_requests_total{status="200"} 30.0' in metrics
        assert 'mlsecops_serving_requests_total{status="401"} 1.0' in metrics
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    frame = read_prediction_log(log.as_uri())
    assert len(frame) == 90 and set(frame["champion_version"]) == {"2"}
    result = warmup_gate(log.as_uri(), WarmupConfig(min_requests=20))
    assert result.metrics["mirrored_requests"] + result.metrics["dropped_requests"] == 30
