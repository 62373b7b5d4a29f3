"""Abusive and malformed requests against ``mlsecops serve``: each gets the right 4xx with a
one-line message, the server keeps answering, and nothing is logged as a prediction.

Follows the abuse cases of OWASP's API Security Top 10 (API4:2023 unrestricted resource
consumption, API2:2023 broken authentication) applied to a model endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.serving.app import create_app
from mlsecops_provider.core.serving.config import ServingConfig
from mlsecops_provider.core.serving.prediction_log import read_prediction_log
from tests.core.serving.conftest import models, request_rows  # noqa: F401 (the fixture)
from tests.core.serving.test_app import make_service

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def guarded(models: dict[str, Any], tmp_path: Path) -> Iterator[Any]:  # noqa: F811
    from fastapi.testclient import TestClient

    config = ServingConfig(max_body_bytes=4096, max_rows=20, rate_per_second=0.05, burst=30)
    service = make_service(models, tmp_path, config=config)
    with TestClient(create_app(service, token=TOKEN)) as client:
        client.service = service  # type: ignore[attr-defined]
        yield client


def one_line_error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert "\n" not in response.text
    return str(response.json()["message"])


def still_serves(client: Any) -> None:
    response = client.post(
        "/invocations", json={"dataframe_records": request_rows(2)}, headers=AUTH
    )
    assert response.status_code == 200 and response.headers["x-model-version"] == "2"


def nothing_logged_but(client: Any, tmp_path: Path, answered_rows: int) -> None:
    service = client.service
    assert service.mirror.drain(30)
    service.log.flush()
    assert len(read_prediction_log((tmp_path / "log").as_uri())) == answered_rows


JSON = "application/json"


def records(*rows: dict[str, Any]) -> bytes:
    return json.dumps({"dataframe_records": list(rows)}).encode()


CASES = {
    "malformed_json": (b'{"dataframe_records": [', JSON, 400, "malformed JSON"),
    "not_utf8": (b'{"inputs": "\xff\xfe"}', JSON, 400, "malformed JSON"),
    "json_list": (b"[1, 2]", JSON, 400, "JSON object"),
    "deeply_nested_json": (b"[" * 4000, JSON, 400, "malformed JSON"),
    "no_format_key": (b'{"data": []}', JSON, 400, "exactly one of"),
    "two_format_keys": (b'{"inputs": {}, "instances": []}', JSON, 400, "exactly one of"),
    "wrong_type": (records({"age": "old", "income": 1.0, "segment": "retail"}), JSON, 422, ""),
    "missing_column": (records({"income": 1.0, "segment": "retail"}), JSON, 422, "age"),
    "text_for_category": (records({"age": 30, "income": 1.0, "segment": 7}), JSON, 422, ""),
    "empty_table": (b'{"dataframe_records": []}', JSON, 400, "no rows"),
    "wrong_content_type": (b"age,income\n1,2\n", "text/plain", 415, "application/json"),
    "oversized_body": (b'{"inputs": "' + b"x" * 5000 + b'"}', JSON, 413, "larger than"),
    "too_many_rows": (records(*request_rows(21)), JSON, 413, "rows"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_request_is_refused_with_one_line_and_not_logged(
    guarded: Any, tmp_path: Path, case: str
) -> None:
    body, content_type, status, words = CASES[case]
    response = guarded.post(
        "/invocations", content=body, headers={**AUTH, "Content-Type": content_type}
    )
    message = one_line_error(response, status)
    assert words in message
    assert "old" not in message and "Traceback" not in message  # no echo of the input
    still_serves(guarded)
    nothing_logged_but(guarded, tmp_path, answered_rows=2)
    assert guarded.service.metrics.value("mlsecops_serving_requests_total", status=str(status)) == 1


def test_missing_or_wrong_token_is_401(guarded: Any, tmp_path: Path) -> None:
    payload = {"dataframe_records": request_rows(2)}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = guarded.post("/invocations", json=payload, headers=headers)
        assert "token" in one_line_error(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    still_serves(guarded)
    nothing_logged_but(guarded, tmp_path, answered_rows=2)


def test_a_flood_of_requests_is_429(guarded: Any, tmp_path: Path) -> None:
    payload = {"dataframe_records": request_rows(1)}
    statuses = [
        guarded.post("/invocations", json=payload, headers=AUTH).status_code for _ in range(40)
    ]
    assert statuses.count(200) <= 31 and statuses.count(429) >= 9
    answered = statuses.count(200)
    response = guarded.post("/invocations", json=payload, headers=AUTH)
    assert "too many requests" in one_line_error(response, 429)
    assert response.headers["retry-after"] == "1"
    assert guarded.get("/health").status_code == 200
    nothing_logged_but(guarded, tmp_path, answered_rows=answered)


def test_declared_length_over_the_limit_is_refused_before_reading(guarded: Any) -> None:
    response = guarded.post(
        "/invocations",
        content=b"{}",
        headers={**AUTH, "Content-Type": "application/json", "Content-Length": "999999999"},
    )
    assert response.status_code == 413
