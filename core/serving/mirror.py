"""Mirror requests to the shadow off the response path.

:meth:`ShadowMirror.submit` never blocks: a request is sampled (``sample_rate``), put on a
bounded queue, or dropped when the queue is full; every request's rows reach the prediction
log either way (with ``shadow_status`` saying what happened). One worker thread scores the
queue with the shadow, so a slow shadow only lengthens its queue and a crashing one only
records errors: neither can delay or change an answer.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.serving.metrics import ServingMetrics
from mlsecops_provider.core.serving.prediction_log import PredictionLog

if TYPE_CHECKING:
    from mlsecops_provider.core.serving.loading import ServedModel

log = logging.getLogger(__name__)


def jsonable_values(raw: Any) -> list[str]:
    """Each prediction as the JSON MLflow's scoring server writes for it."""
    import json

    from mlflow.utils.proto_json_utils import NumpyEncoder, _get_jsonable_obj

    values = _get_jsonable_obj(raw, pandas_orient="records")
    if not isinstance(values, list):
        values = [values]
    return [json.dumps(v, cls=NumpyEncoder) for v in values]


@dataclass
class MirrorItem:
    frame: Any
    rows: list[dict[str, Any]]
    enqueued: float = field(default_factory=time.perf_counter)


class ShadowMirror:
    def __init__(
        self,
        shadow: ServedModel | None,
        prediction_log: PredictionLog | None,
        metrics: ServingMetrics,
        *,
        sample_rate: float = 1.0,
        queue_size: int = 1000,
        seed: int | None = None,
        runner: Any = None,
    ) -> None:
        self.shadow = shadow
        self.runner = runner  # a ShadowProcess, or None: predict on the worker thread
        self.log = prediction_log
        self.metrics = metrics
        self.sample_rate = sample_rate
        self.queue: queue.Queue[MirrorItem | None] = queue.Queue(maxsize=queue_size)
        self._random = random.Random(seed)
        self._thread: threading.Thread | None = None
        self.scored = 0

    def start(self) -> None:
        if self.shadow is not None:
            self._thread = threading.Thread(target=self._run, name="shadow-mirror", daemon=True)
            self._thread.start()

    def submit(self, frame: Any, rows: list[dict[str, Any]]) -> str:
        """Hand a served request over (never blocks); returns its shadow status."""
        status = "queued"
        if self.shadow is None:
            status = "none"
        elif self._random.random() >= self.sample_rate:
            status = "not_sampled"
        else:
            try:
                self.queue.put_nowait(MirrorItem(frame, rows))
            except queue.Full:
                status = "dropped"
        self.metrics.shadow.labels(status).inc()
        self.metrics.shadow_queue.set(self.queue.qsize())
        if status != "queued":
            self._log([{**r, "shadow_status": status} for r in rows])
        return status

    def _log(self, rows: list[dict[str, Any]]) -> None:
        if self.log is not None:
            self.log.append(rows)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                self._score(item)
            except Exception as err:  # the worker must survive anything the shadow does
                log.error("shadow worker: %s", err)
            finally:
                self.queue.task_done()
                self.metrics.shadow_queue.set(self.queue.qsize())

    def _score(self, item: MirrorItem) -> None:
        assert self.shadow is not None
        started, elapsed, cpu = time.perf_counter(), None, None
        try:  # timed as the champion is: the model on a frame its schema already accepted
            if self.runner is not None:
                values, cpu = self.runner.predict(item.frame)
                elapsed = time.perf_counter() - started
            else:
                values, elapsed, cpu = self._predict_here(item.frame)
            if len(values) != len(item.rows):
                raise ValueError(f"{len(values)} predictions for {len(item.rows)} rows")
            status = "ok"
        except Exception as err:  # a failing shadow is recorded, never raised
            log.warning("shadow v%s failed: %s: %s", self.shadow.version, type(err).__name__, err)
            values, status = [None] * len(item.rows), "error"
        if elapsed is None:
            elapsed = time.perf_counter() - started
        self.metrics.latency.labels("shadow", self.shadow.version).observe(elapsed)
        self.metrics.shadow.labels(status).inc()
        rows = []
        for row, value in zip(item.rows, values, strict=True):
            if status == "ok" and row.get("champion_prediction") not in (None, value):
                self.metrics.disagreements.inc()
            rows.append({
                **row,
                "shadow_prediction": value,
                "shadow_latency_ms": elapsed * 1000.0,
                "shadow_cpu_ms": None if cpu is None else cpu * 1000.0,
                "shadow_status": status,
            })  # fmt: skip
        self.scored += 1
        self._log(rows)

    def _predict_here(self, frame: Any) -> tuple[list[str], float, float]:
        from mlsecops_provider.core.serving.protocol import enforce_schema

        assert self.shadow is not None
        flavor = getattr(self.shadow.pyfunc, "loader_module", None)
        frame = enforce_schema(frame, self.shadow.input_schema, flavor)
        started, cpu_started = time.perf_counter(), time.thread_time()
        raw = self.shadow.predict_enforced(frame)
        elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
        return jsonable_values(raw), elapsed, cpu

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until the queue is empty (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue.unfinished_tasks == 0 or self._thread is None:
                return True
            time.sleep(0.01)
        return False

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            log.warning("shadow queue still full at shutdown; %d items lost", self.queue.qsize())
        else:
            self._thread.join(timeout=timeout)
        if self.runner is not None:
            self.runner.close()
