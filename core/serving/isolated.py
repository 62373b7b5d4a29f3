"""The shadow in its own process, at the lowest CPU priority (``SCHED_IDLE``, ``nice 19``).

A shadow on a thread shares the interpreter with the answers: under CPU saturation its
predictions hold the GIL and lengthen the champion's tail latency. In a child process it
only gets CPU the server does not use: Linux's ``SCHED_IDLE`` policy (every thread of the
child, falling back to ``nice 19`` elsewhere) lets any normal task that wakes up preempt it
at once and puts it behind every other task, and its math libraries use one thread. When
it falls behind, the mirror's bounded queue drops requests instead. Requests arrive in
batches (a list of frames per message, scored by ``mirror.score_frames``). The child
loads the model from the same verified bytes (scanned again, allowlisted skops loader) and
answers in JSON only (never a pickle): the parent trusts nothing the shadow's process sends
beyond strings and numbers.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlsecops_provider.core.scan.gate import ModelScanConfig

log = logging.getLogger(__name__)
READY_TIMEOUT = 300.0


def lowest_priority(nice: int = 19) -> str:
    """Put every thread of this process at the lowest CPU priority; returns which policy."""
    os.nice(nice)  # also the fallback where SCHED_IDLE does not exist
    policy = "nice"
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        tasks = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]
        try:
            for task in tasks:  # threads the libraries started at import keep their own policy
                os.sched_setscheduler(int(task), os.SCHED_IDLE, os.sched_param(0))
            policy = "idle"
        except OSError as err:
            log.warning("shadow process: SCHED_IDLE refused (%s); nice %d only", err, nice)
    return policy


def _child(conn: Any, files: dict[str, bytes], where: str, scan: Any, nice: int) -> None:
    """Child process: load, then answer batches of ``predict`` requests until the pipe closes."""
    from mlsecops_provider.core.serving.loading import pyfunc_from_files
    from mlsecops_provider.core.serving.mirror import jsonable_values, score_frames
    from mlsecops_provider.core.serving.protocol import enforce_schema

    try:
        pyfunc = pyfunc_from_files(files, where, scan)
        impl, schema = pyfunc._model_impl, pyfunc.metadata.get_input_schema()
        flavor = getattr(pyfunc, "loader_module", None)
        _one_thread()
        policy = lowest_priority(nice)
        conn.send_bytes(json.dumps({"ok": True, "policy": policy}).encode())
    except Exception as err:  # reported to the parent, which refuses to start
        conn.send_bytes(json.dumps({"error": f"{type(err).__name__}: {err}"}).encode())
        return

    def predict(frame: Any, enforced: bool = False) -> tuple[list[str], float]:
        frame = frame if enforced else enforce_schema(frame, schema, flavor)
        started = time.thread_time()
        raw = impl.predict(frame)
        return jsonable_values(raw), time.thread_time() - started

    bodies = RequestBodies(schema, flavor, pyfunc)
    while True:
        try:
            message = pickle.loads(conn.recv_bytes())  # from the parent, our own process
        except (EOFError, OSError):
            return
        try:
            if isinstance(message, tuple) and message[0] == "bodies":
                results, cpu = bodies.score(list(message[1]), predict)
            else:
                results, cpu = score_frames([pickle.loads(f) for f in message], predict)
            reply: dict[str, Any] = {"results": results, "cpu": cpu}
        except Exception as err:  # a failing shadow answers with its error
            reply = {"error": f"{type(err).__name__}: {err}"}
        conn.send_bytes(json.dumps(reply).encode())


class RequestBodies:
    """Scores a batch of raw request bodies with the shadow's own schema (in its process).

    The first request is parsed and predicted alone (its CPU time is the one logged); when
    every other one is a plain request (:class:`FastFrames`), their rows become one frame and
    one prediction, else each is parsed as the server parses it and scored by
    :func:`score_frames`. A body the shadow's schema refuses fails only itself.
    """

    def __init__(self, schema: Any, flavor: str | None, pyfunc: Any) -> None:
        from mlsecops_provider.core.serving.fastparse import FastFrames

        self.schema, self.fast = schema, FastFrames(schema, flavor)
        names = schema.input_names() if schema is not None and schema.has_input_names() else None
        self.columns = tuple(map(str, names)) if names else None

    def score(
        self, bodies: list[bytes], predict: Any
    ) -> tuple[list[list[str] | str], float | None]:
        from mlsecops_provider.core.serving.protocol import decode_body

        rest = bodies[1:]
        if len(rest) > 1 and self.fast.enabled:
            try:
                joined = self.fast.joined([decode_body(b) for b in rest])
            except Exception:  # a malformed body: each on its own below
                joined = None
            if joined is not None:
                try:
                    values, _ = predict(joined[0], enforced=True)
                except Exception:  # one bad request fails only itself: one by one below
                    values = []
                if len(values) == sum(joined[1]):
                    first, cpu = self._first(bodies[0], predict)
                    out: list[list[str] | str] = [first]
                    offset = 0
                    for size in joined[1]:
                        out.append(values[offset : offset + size])
                        offset += size
                    return out, cpu
        return self._one_by_one(bodies, predict)

    def _one_by_one(
        self, bodies: list[bytes], predict: Any
    ) -> tuple[list[list[str] | str], float | None]:
        from mlsecops_provider.core.serving.mirror import score_frames

        frames = [self._frame_or_error(b) for b in bodies]
        good = [i for i, f in enumerate(frames) if not isinstance(f, str)]
        out: list[list[str] | str] = [f if isinstance(f, str) else [] for f in frames]
        if not good:
            return out, None
        scored, cpu = score_frames([frames[i] for i in good], predict)
        for i, result in zip(good, scored, strict=True):
            out[i] = result
        return out, cpu if good[0] == 0 else None

    def _first(self, body: bytes, predict: Any) -> tuple[list[str] | str, float | None]:
        try:
            values, cpu = predict(self._frame(body))
            return values, cpu
        except Exception as err:
            return f"{type(err).__name__}: {err}", None

    def _frame(self, body: bytes) -> Any:
        from mlsecops_provider.core.serving.protocol import parse_request

        return parse_request(body, self.schema, self.columns, None)[0]

    def _frame_or_error(self, body: bytes) -> Any:
        """The body's frame, or the error (a string) the shadow's schema gives."""
        try:
            return self._frame(body)
        except Exception as err:
            return f"{type(err).__name__}: {err}"


def _one_thread() -> None:
    """Math libraries (BLAS, OpenMP) on one thread: the shadow never takes a second core."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn
        return
    threadpool_limits(1)


def _well_formed(results: Any, count: int) -> bool:
    if not isinstance(results, list) or len(results) != count:
        return False
    return all(
        isinstance(r, str) or (isinstance(r, list) and all(isinstance(v, str) for v in r))
        for r in results
    )


class ShadowProcess:
    """Runs the shadow's predictions in a child process (spawned, niced)."""

    def __init__(
        self,
        files: dict[str, bytes],
        where: str,
        scan_config: ModelScanConfig | None = None,
        nice: int = 19,
    ) -> None:
        import multiprocessing

        from mlsecops_provider.core.errors import UnsafeModelError

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_child, args=(child, files, where, scan_config, nice), daemon=True
        )
        self._process.start()
        child.close()
        if not self._conn.poll(READY_TIMEOUT):
            self.close()
            raise UnsafeModelError(f"{where}: the shadow process did not start")
        ready = json.loads(self._conn.recv_bytes())
        if "error" in ready:
            self.close()
            raise UnsafeModelError(f"{where}: the shadow process refused it: {ready['error']}")
        self.policy = str(ready.get("policy", ""))
        self.pid = self._process.pid

    def predict(self, frame: Any) -> tuple[list[str], float]:
        """Each prediction's JSON and the child's CPU seconds; RuntimeError on failure."""
        results, cpu = self.predict_batch([frame])
        if isinstance(results[0], str):
            raise RuntimeError(results[0])
        return results[0], float(cpu or 0.0)

    def predict_batch(self, frames: list[Any]) -> tuple[list[list[str] | str], float | None]:
        """Per frame its predictions' JSON or its error; the first frame's CPU seconds.

        One message each way for the whole batch; RuntimeError when the process is gone or
        answers with anything but strings and a number.
        """
        # frame by frame: one pickle call holds the interpreter lock, a short one lets the
        # event loop in between
        message = [pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL) for frame in frames]
        return self._exchange(message, len(frames))

    def predict_bodies(self, bodies: list[bytes]) -> tuple[list[list[str] | str], float | None]:
        """As :meth:`predict_batch` for the requests' raw bodies: the child parses them (no
        frame is pickled on the server's side, where the answers hold the interpreter)."""
        return self._exchange(("bodies", list(bodies)), len(bodies))

    def _exchange(self, message: Any, count: int) -> tuple[list[list[str] | str], float | None]:
        if not self._process.is_alive():
            raise RuntimeError("the shadow process is gone")
        self._conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        reply = json.loads(self._conn.recv_bytes())
        if "error" in reply:
            raise RuntimeError(str(reply["error"]))
        results, cpu = reply.get("results"), reply.get("cpu")
        if not _well_formed(results, count) or not (cpu is None or isinstance(cpu, (int, float))):
            raise RuntimeError("the shadow process sent something other than predictions")
        return results, None if cpu is None else float(cpu)

    def close(self) -> None:
        self._conn.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()
