"""Mirror requests to the shadow off the response path.

:meth:`ShadowMirror.submit` never blocks: a request is sampled (``sample_rate``), put on a
bounded queue, or dropped when the queue is full; every request's rows reach the prediction
log either way (with ``shadow_status`` saying what happened). One worker thread scores the
queue with the shadow, so a slow shadow only lengthens its queue and a crashing one only
records errors: neither can delay or change an answer.

The worker takes the queue in batches (what is waiting, up to ``batch_max`` requests, after
lingering ``batch_wait_s`` for more): one message to the shadow's process and two
predictions per batch instead of one per request (:func:`score_frames`). A shadow process
gets the requests' raw bodies and parses them itself, so the server's interpreter pickles
no frame; recording a batch yields the interpreter between requests. The first request
of a batch is predicted alone and its CPU time logged (``shadow_cpu_ms``), so the warm-up
gate compares the shadow's cost per request with the champion's like for like; the others
are predicted together and logged without a CPU time.
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


def score_frames(frames: list[Any], predict: Any) -> tuple[list[list[str] | str], float | None]:
    """Each frame's predictions (or its error, a string) and the first frame's CPU seconds.

    ``predict(frame) -> (values, cpu)`` enforces the schema, predicts and times the model
    call alone (as the champion is timed). The first frame is predicted alone; the rest in
    one call on their concatenation when their columns and types are the same
    (row-independent models, as sklearn's predict), split back by length. A failing
    concatenated call is retried frame by frame, so one bad request only fails itself.
    """
    first, cpu = _guarded(predict, frames[0])
    results: list[list[str] | str] = [first]
    rest = frames[1:]
    if len(rest) > 1 and _same_layout(rest):
        import pandas as pd

        sizes = [len(frame) for frame in rest]
        joined, _ = _guarded(predict, pd.concat(rest, ignore_index=True))
        if not isinstance(joined, str) and len(joined) == sum(sizes):
            offset = 0
            for size in sizes:
                results.append(joined[offset : offset + size])
                offset += size
            return results, cpu
        log.info("shadow batch of %d requests failed; scoring them one by one", len(rest))
    results.extend(_guarded(predict, frame)[0] for frame in rest)
    return results, cpu


def _guarded(predict: Any, frame: Any) -> tuple[list[str] | str, float | None]:
    try:
        values, cpu = predict(frame)
        return list(values), cpu
    except Exception as err:  # a failing shadow answers with its error
        return f"{type(err).__name__}: {err}", None


def _same_layout(frames: list[Any]) -> bool:
    first = frames[0]
    columns, dtypes = list(first.columns), list(first.dtypes)
    return all(list(f.columns) == columns and list(f.dtypes) == dtypes for f in frames[1:])


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
    body: bytes | None = None  # the raw request, for a shadow process that parses it itself
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
        batch_max: int = 256,
        batch_wait_s: float = 1.0,
    ) -> None:
        self.shadow = shadow
        self.runner = runner  # a ShadowProcess, or None: predict on the worker thread
        self.log = prediction_log
        self.metrics = metrics
        self.sample_rate = sample_rate
        self.batch_max, self.batch_wait_s = batch_max, batch_wait_s
        self.queue: queue.Queue[MirrorItem | None] = queue.Queue(maxsize=queue_size)
        self._random = random.Random(seed)
        self._thread: threading.Thread | None = None
        self.scored = 0

    def start(self) -> None:
        if self.shadow is not None:
            self._thread = threading.Thread(target=self._run, name="shadow-mirror", daemon=True)
            self._thread.start()

    def submit(self, frame: Any, rows: list[dict[str, Any]], body: bytes | None = None) -> str:
        """Hand a served request over (never blocks); returns its shadow status."""
        status = "queued"
        if self.shadow is None:
            status = "none"
        elif self._random.random() >= self.sample_rate:
            status = "not_sampled"
        else:
            try:
                self.queue.put_nowait(MirrorItem(frame, rows, body))
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
        stop = False
        while not stop:
            batch, stop = self._take()
            try:
                if batch:
                    self._score(batch)
            except Exception as err:  # the worker must survive anything the shadow does
                log.error("shadow worker: %s", err)
            finally:
                for _ in range(len(batch) + stop):
                    self.queue.task_done()
                self.metrics.shadow_queue.set(self.queue.qsize())

    def _take(self) -> tuple[list[MirrorItem], bool]:
        """The next batch (blocks for its first item) and whether the queue was closed.

        After the first item the worker sleeps ``batch_wait_s`` once (not when a full batch
        is already waiting), then takes what is waiting: no wake-up (and no interpreter lock)
        per queued request, and no cap on the shadow's throughput under load.
        """
        first = self.queue.get()
        if first is None:
            return [], True
        if self.batch_max > 1 and self.batch_wait_s > 0 and self.queue.qsize() < self.batch_max:
            time.sleep(self.batch_wait_s)
        batch = [first]
        while len(batch) < self.batch_max:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _score(self, batch: list[MirrorItem]) -> None:
        assert self.shadow is not None
        started, frames = time.perf_counter(), [item.frame for item in batch]
        try:  # timed as the champion is: the model on a frame its schema already accepted
            bodies = [item.body for item in batch]
            if (
                self.runner is not None
                and hasattr(self.runner, "predict_bodies")
                and all(body is not None for body in bodies)
            ):
                results, cpu = self.runner.predict_bodies(bodies)
            elif self.runner is not None:
                results, cpu = self.runner.predict_batch(frames)
            else:
                results, cpu = score_frames(frames, self._predict_here)
        except Exception as err:  # a failing shadow (or its process) is recorded, never raised
            results, cpu = [f"{type(err).__name__}: {err}"] * len(batch), None
        elapsed = time.perf_counter() - started
        self.metrics.latency.labels("shadow", self.shadow.version).observe(elapsed)
        for index, (item, result) in enumerate(zip(batch, results, strict=True)):
            self._record(item, result, elapsed, cpu if index == 0 else None)
            time.sleep(0)  # let the answers' thread take the interpreter between records

    def _record(
        self, item: MirrorItem, result: list[str] | str, elapsed: float, cpu: float | None
    ) -> None:
        assert self.shadow is not None
        values: list[Any] = [None] * len(item.rows)
        status = "error"
        if isinstance(result, str):
            log.warning("shadow v%s failed: %s", self.shadow.version, result)
        elif len(result) != len(item.rows):
            log.warning("shadow: %d predictions for %d rows", len(result), len(item.rows))
        else:
            values, status = result, "ok"
        self.metrics.shadow.labels(status).inc()
        rows = []
        for row, value in zip(item.rows, values, strict=True):
            if status == "ok" and row.get("champion_prediction") not in (None, value):
                self.metrics.disagreements.inc()
            rows.append({
                **row,
                "shadow_prediction": value,
                "shadow_latency_ms": elapsed * 1000.0,
                "shadow_cpu_ms": None if cpu is None or status != "ok" else cpu * 1000.0,
                "shadow_status": status,
            })  # fmt: skip
        self.scored += 1
        self._log(rows)

    def _predict_here(self, frame: Any) -> tuple[list[str], float]:
        from mlsecops_provider.core.serving.protocol import enforce_schema

        assert self.shadow is not None
        flavor = getattr(self.shadow.pyfunc, "loader_module", None)
        frame = enforce_schema(frame, self.shadow.input_schema, flavor)
        started = time.thread_time()
        raw = self.shadow.predict_enforced(frame)
        cpu = time.thread_time() - started
        return jsonable_values(raw), cpu

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
