"""The shadow scores queued requests in batches: the same predictions as one by one, one
message to its process per batch, the first request of each batch timed alone, a bad
request failing only itself, and the shadow's process at the lowest CPU priority."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.serving.config import ServingConfig
from mlsecops_provider.core.serving.metrics import ServingMetrics
from mlsecops_provider.core.serving.mirror import ShadowMirror, jsonable_values, score_frames
from mlsecops_provider.core.serving.prediction_log import PredictionLog, read_prediction_log
from mlsecops_provider.core.serving.protocol import enforce_schema
from tests.core.serving.conftest import COLUMNS, training_frame


def frames(count: int) -> list[Any]:
    return [training_frame(1 + i % 3, seed=50 + i)[list(COLUMNS)] for i in range(count)]


def predictor(model: Any) -> Any:
    def predict(frame: Any) -> tuple[list[str], float]:
        enforced = enforce_schema(frame, model.input_schema, model.pyfunc.loader_module)
        return jsonable_values(model.predict_enforced(enforced)), 0.001

    return predict


def test_batched_predictions_equal_one_by_one(models: dict[str, Any]) -> None:
    predict = predictor(models["bad_shadow"])
    batch = frames(7)
    results, cpu = score_frames(batch, predict)
    assert results == [predict(f)[0] for f in batch]
    assert cpu == 0.001  # the first frame's own timing


def test_a_bad_request_in_a_batch_fails_only_itself(models: dict[str, Any]) -> None:
    predict = predictor(models["shadow"])
    batch = frames(5)
    batch[3] = batch[3].assign(age="not a number")  # a frame the shadow's schema refuses
    results, _ = score_frames(batch, predict)
    assert isinstance(results[3], str)
    assert [r for i, r in enumerate(results) if i != 3] == [
        predict(f)[0] for i, f in enumerate(batch) if i != 3
    ]


class CountingRunner:
    """A runner in this process that counts the batches it was sent."""

    def __init__(self, model: Any) -> None:
        self.predict, self.batches = predictor(model), []

    def predict_batch(self, batch: list[Any]) -> tuple[list[Any], float | None]:
        self.batches.append(len(batch))
        return score_frames(batch, self.predict)

    def close(self) -> None:
        pass


def test_queued_requests_go_to_the_shadow_in_few_messages(
    models: dict[str, Any], tmp_path: Path
) -> None:
    runner = CountingRunner(models["shadow"])
    log = PredictionLog((tmp_path / "log").as_uri(), batch_rows=1000)
    mirror = ShadowMirror(
        models["shadow"], log, ServingMetrics(), runner=runner, batch_max=8, batch_wait_s=0.5
    )
    log.start()
    for i, frame in enumerate(frames(20)):  # queued before the worker runs: batches form
        rows = [{"request_id": f"r{i}", "row": r} for r in range(len(frame))]
        assert mirror.submit(frame, rows) == "queued"
    mirror.start()
    assert mirror.drain(60)
    mirror.close()
    log.close()
    assert sum(runner.batches) == 20 and max(runner.batches) == 8 and len(runner.batches) <= 4
    logged = read_prediction_log((tmp_path / "log").as_uri())
    assert (logged["shadow_status"] == "ok").all()
    timed = logged.groupby("request_id")["shadow_cpu_ms"].first().notna().sum()
    assert timed == len(runner.batches)  # one timed request per batch


def test_batch_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="shadow_batch_max"):
        ServingConfig(shadow_batch_max=0)
    with pytest.raises(ValueError, match="shadow_batch_wait_s"):
        ServingConfig(shadow_batch_wait_s=-1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_IDLE is Linux's")
def test_the_shadow_process_runs_at_the_lowest_priority(models: dict[str, Any]) -> None:
    from mlsecops_provider.core.serving.isolated import ShadowProcess

    runner = ShadowProcess(models["shadow"].files, "shadow v3")
    try:
        values, _ = runner.predict(frames(1)[0])
        assert values
        assert runner.policy == "idle"
        threads = os.listdir(f"/proc/{runner.pid}/task")
        assert threads and all(os.sched_getscheduler(int(t)) == os.SCHED_IDLE for t in threads)
        assert os.getpriority(os.PRIO_PROCESS, runner.pid) == 19
    finally:
        runner.close()


def test_raw_bodies_score_as_their_frames_and_a_bad_one_fails_only_itself(
    models: dict[str, Any],
) -> None:
    """The shadow process's path (raw bodies, plain ones joined into one frame) gives each
    request the predictions its own frame gets; a body the shadow refuses fails alone."""
    import json

    from mlsecops_provider.core.serving.isolated import RequestBodies

    shadow = models["shadow"]
    pyfunc = shadow.pyfunc
    scorer = RequestBodies(shadow.input_schema, pyfunc.loader_module, pyfunc)
    assert scorer.fast.enabled
    batch = frames(6)
    bodies = [json.dumps({"dataframe_records": f.to_dict("records")}).encode() for f in batch[:4]]
    bodies.append(
        json.dumps({"dataframe_split": json.loads(batch[4].to_json(orient="split"))}).encode()
    )
    bodies.append(json.dumps({"dataframe_records": batch[5].to_dict("records")}).encode())
    predict = predictor(shadow)

    def timed(frame: Any, enforced: bool = False) -> tuple[list[str], float]:
        return predict(frame)

    expected = [predict(f)[0] for f in batch]
    joined, cpu = scorer.score(bodies, timed)
    assert joined == expected and cpu == 0.001
    bad = list(bodies)
    bad[2] = json.dumps(
        {"dataframe_records": [{"age": "old", "income": 1.0, "segment": "a"}]}
    ).encode()
    bad[3] = b"{not json"
    results, _ = scorer.score(bad, timed)
    assert isinstance(results[2], str) and isinstance(results[3], str)
    assert [r for i, r in enumerate(results) if i not in (2, 3)] == [
        e for i, e in enumerate(expected) if i not in (2, 3)
    ]
