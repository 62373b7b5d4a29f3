"""The endpoint with real sklearn models (skops, loaded from memory) through FastAPI's
TestClient: the answer is the champion's, a broken or slow shadow changes nothing, the
fallback answers a failing champion, out-of-profile rows follow the policy."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.serving.app import create_app
from mlsecops_provider.core.serving.config import ServingConfig
from mlsecops_provider.core.serving.prediction_log import PredictionLog, read_prediction_log
from mlsecops_provider.core.serving.profile import build_profile
from mlsecops_provider.core.serving.protocol import predictions_json
from mlsecops_provider.core.serving.service import ServingService
from tests.core.serving.conftest import (
    COLUMNS,
    CrashingModel,
    SlowModel,
    request_rows,
    wrapped,
)


def make_service(models: dict[str, Any], tmp_path: Path, **kw: Any) -> ServingService:
    config = kw.pop("config", None) or ServingConfig(log_flush_seconds=0.2, log_batch_rows=50)
    champion = kw.pop("champion", models["champion"])
    profile = build_profile(models["train"], COLUMNS)
    log = PredictionLog(
        (tmp_path / "log").as_uri(), batch_rows=config.log_batch_rows, flush_seconds=0.2
    )
    return ServingService(
        champion,
        fallback=kw.pop("fallback", models["fallback"]),
        shadow=kw.pop("shadow", models["shadow"]),
        profile=kw.pop("profile", profile),
        config=config,
        prediction_log=log,
        seed=0,
    )


@pytest.fixture()
def client(models: dict[str, Any], tmp_path: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    service = make_service(models, tmp_path)
    with TestClient(create_app(service)) as test_client:
        test_client.service = service  # type: ignore[attr-defined]
        yield test_client


def champion_body(models: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    import pandas as pd

    return predictions_json(models["champion"].predict(pd.DataFrame(rows)))


def logged(service: ServingService, tmp_path: Path) -> Any:
    assert service.mirror.drain(30)
    service.log.flush()  # type: ignore[union-attr]
    return read_prediction_log((tmp_path / "log").as_uri())


@pytest.mark.parametrize(
    "payload",
    [
        lambda rows, frame: {"dataframe_records": rows},
        lambda rows, frame: {"dataframe_split": frame.to_dict(orient="split")},
        lambda rows, frame: {"inputs": frame.to_dict(orient="list")},
        lambda rows, frame: {"instances": rows},
    ],
    ids=["dataframe_records", "dataframe_split", "inputs", "instances"],
)
def test_every_scoring_format_is_answered_with_the_champions_bytes(
    client: Any, models: dict[str, Any], payload: Any
) -> None:
    import pandas as pd

    rows = request_rows(6)
    response = client.post("/invocations", json=payload(rows, pd.DataFrame(rows)))
    assert response.status_code == 200, response.text
    assert response.text == champion_body(models, rows)
    assert response.headers["x-model-version"] == "2"
    assert response.headers["x-fallback"] == "false"


def test_the_answer_and_log_when_the_shadow_disagrees(
    models: dict[str, Any], tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    service = make_service(models, tmp_path, shadow=models["bad_shadow"])
    rows = request_rows(8)
    with TestClient(create_app(service)) as client:
        response = client.post(
            "/invocations", json={"dataframe_records": rows}, headers={"X-Request-Id": "req-1"}
        )
        assert response.text == champion_body(models, rows)
        frame = logged(service, tmp_path)
    assert list(frame["request_id"].unique()) == ["req-1"]
    assert (frame["shadow_status"] == "ok").all()
    assert (frame["shadow_prediction"] != frame["champion_prediction"]).any()
    assert service.metrics.value("mlsecops_serving_shadow_disagreements_total") > 0
    assert not any(c.startswith("input.") for c in frame.columns)  # inputs only as digests
    assert frame["inputs_sha256"].str.len().eq(64).all()


@pytest.mark.parametrize("fake", ["crash", "slow"])
def test_a_crashing_or_slow_shadow_changes_nothing_for_clients(
    models: dict[str, Any], tmp_path: Path, fake: str
) -> None:
    from fastapi.testclient import TestClient

    make = (lambda m: CrashingModel(m)) if fake == "crash" else (lambda m: SlowModel(m, 0.5))
    # at most 2 + 2 requests wait (batch in progress + queue): the rest must be dropped
    config = ServingConfig(shadow_queue_size=2, shadow_batch_max=2, log_flush_seconds=0.2)
    service = make_service(models, tmp_path, shadow=wrapped(models["shadow"], make), config=config)
    rows = request_rows(4)
    expected = champion_body(models, rows)
    with TestClient(create_app(service)) as client:
        started = time.perf_counter()
        answers = [client.post("/invocations", json={"dataframe_records": rows}) for _ in range(6)]
        elapsed = time.perf_counter() - started
        assert all(a.status_code == 200 and a.text == expected for a in answers)
        assert all(a.headers["x-fallback"] == "false" for a in answers)
        assert elapsed < 2.5  # six answers while the shadow would need 3 s for them
        frame = logged(service, tmp_path)
    statuses = set(frame["shadow_status"])
    assert statuses <= {"ok", "error", "dropped"}
    if fake == "crash":
        assert "error" in statuses and "ok" not in statuses
    else:
        assert "dropped" in statuses  # the bounded queue overflowed instead of blocking
    assert len(frame) == 6 * len(rows)  # every answered row is logged either way


def test_a_crashing_champion_is_answered_by_the_fallback_and_marked(
    models: dict[str, Any], tmp_path: Path
) -> None:
    import pandas as pd
    from fastapi.testclient import TestClient

    champion = wrapped(models["champion"], CrashingModel)
    service = make_service(models, tmp_path, champion=champion)
    rows = request_rows(5)
    with TestClient(create_app(service)) as client:
        response = client.post("/invocations", json={"dataframe_records": rows})
        assert response.status_code == 200
        assert response.headers["x-model-version"] == "1"
        assert response.headers["x-fallback"] == "true"
        assert response.headers["x-fallback-reason"] == "error"
        assert response.text == predictions_json(models["fallback"].predict(pd.DataFrame(rows)))
        frame = logged(service, tmp_path)
        metrics = client.get("/metrics").text
    assert 'mlsecops_serving_fallbacks_total{reason="error"} 1.0' in metrics
    assert (frame["fallback"] == "error").all() and (frame["served_version"] == "1").all()
    assert frame["champion_prediction"].isna().all()


def test_a_slow_champion_times_out_to_the_fallback(models: dict[str, Any], tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    champion = wrapped(models["champion"], lambda m: SlowModel(m, 2.0))
    config = ServingConfig(champion_timeout_s=0.3)
    service = make_service(models, tmp_path, champion=champion, config=config)
    with TestClient(create_app(service)) as client:
        started = time.perf_counter()
        response = client.post("/invocations", json={"dataframe_records": request_rows(2)})
        assert time.perf_counter() - started < 1.5
    assert response.status_code == 200
    assert response.headers["x-fallback-reason"] == "timeout"
    assert response.headers["x-model-version"] == "1"


def test_no_fallback_means_503_not_a_wrong_answer(models: dict[str, Any], tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    champion = wrapped(models["champion"], CrashingModel)
    service = make_service(models, tmp_path, champion=champion, fallback=None)
    with TestClient(create_app(service)) as client:
        response = client.post("/invocations", json={"dataframe_records": request_rows(2)})
        assert response.status_code == 503
        assert "no fallback" in response.json()["message"]
        assert client.get("/health").status_code == 200


OUT = {"age": 140, "income": 50_000.0, "segment": "retail"}
UNSEEN = {"age": 40, "income": 50_000.0, "segment": "pirate"}


@pytest.mark.parametrize("action", ["reject", "fallback", "allow"])
def test_out_of_profile_rows_are_counted_and_handled_by_policy(
    models: dict[str, Any], tmp_path: Path, action: str
) -> None:
    from fastapi.testclient import TestClient

    service = make_service(models, tmp_path, config=ServingConfig(out_of_profile=action))
    rows = [*request_rows(2), OUT, UNSEEN]
    with TestClient(create_app(service)) as client:
        response = client.post("/invocations", json={"dataframe_records": rows})
        frame = logged(service, tmp_path)
    assert service.metrics.value("mlsecops_serving_out_of_profile_rows_total") == 2
    assert service.metrics.value("mlsecops_serving_profile_violations_total", kind="range") == 1
    assert service.metrics.value("mlsecops_serving_profile_violations_total", kind="category") == 1
    if action == "reject":
        assert response.status_code == 422
        assert "outside the champion's training profile" in response.json()["message"]
        assert len(frame) == 0  # nothing logged as a prediction
    elif action == "fallback":
        assert response.status_code == 200
        assert response.headers["x-fallback-reason"] == "out_of_profile"
        assert response.headers["x-model-version"] == "1"
    else:
        assert response.status_code == 200 and response.headers["x-model-version"] == "2"
        assert frame["out_of_profile"].tolist() == [False, False, True, True]


def test_health_and_metrics(client: Any) -> None:
    client.post("/invocations", json={"dataframe_records": request_rows(3)})
    health = client.get("/health").json()
    assert health["models"]["champion"]["version"] == "2"
    assert health["models"]["fallback"]["version"] == "1"
    assert health["models"]["shadow"]["digest"].startswith("sha256:")
    text = client.get("/metrics").text
    assert 'mlsecops_serving_requests_total{status="200"} 1.0' in text
    assert 'mlsecops_serving_model_latency_seconds_count{role="champion",version="2"} 1.0' in text


def test_prediction_log_batches_are_chained(models: dict[str, Any], tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from mlsecops_provider.core.errors import AuditLogError, DigestMismatchError

    config = ServingConfig(log_batch_rows=4, log_flush_seconds=0.2)
    service = make_service(models, tmp_path, config=config)
    with TestClient(create_app(service)) as client:
        for _ in range(3):
            client.post("/invocations", json={"dataframe_records": request_rows(4)})
        frame = logged(service, tmp_path)
    assert len(frame) == 12
    batches = sorted((tmp_path / "log" / "batches").iterdir())
    assert len(batches) >= 3
    batches[1].write_bytes(batches[1].read_bytes() + b"\0")
    with pytest.raises(DigestMismatchError):
        read_prediction_log((tmp_path / "log").as_uri())
    chain = tmp_path / "log" / "chain.jsonl"
    lines = chain.read_bytes().splitlines(keepends=True)
    chain.write_bytes(b"".join(lines[:-1]))  # drop the last batch from the chain
    with pytest.raises(AuditLogError):
        read_prediction_log((tmp_path / "log").as_uri())
    entry = json.loads(lines[0])
    assert len(entry["hash"]) == 64 and entry["prev_hash"] == "0" * 64


def test_shadow_in_its_own_process_scores_and_a_killed_one_changes_nothing(
    models: dict[str, Any], tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from mlsecops_provider.core.serving.isolated import ShadowProcess

    shadow = models["shadow"]
    runner = ShadowProcess(shadow.files, "shadow v3")
    service = make_service(models, tmp_path)
    service.mirror.runner = runner
    rows = request_rows(4)
    expected = champion_body(models, rows)
    with TestClient(create_app(service)) as client:
        for _ in range(3):
            assert client.post("/invocations", json={"dataframe_records": rows}).text == expected
        assert service.mirror.drain(60)
        runner._process.kill()  # the shadow's process dies
        runner._process.join(10)
        answer = client.post("/invocations", json={"dataframe_records": rows})
        assert answer.status_code == 200 and answer.text == expected
        frame = logged(service, tmp_path)
    statuses = frame.groupby("request_id", sort=False)["shadow_status"].first().tolist()
    assert statuses == ["ok", "ok", "ok", "error"]
    scored = frame[frame["shadow_status"] == "ok"]
    assert (scored["shadow_prediction"] == scored["champion_prediction"]).all()
    # the first request of each batch is predicted alone and timed; the others carry no CPU time
    assert scored["shadow_cpu_ms"].notna().any()
