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

    def predict(frame: Any) -> tuple[list[str], float]:
        frame = enforce_schema(frame, schema, flavor)
        started = time.thread_time()
        raw = impl.predict(frame)
        return jsonable_values(raw), time.thread_time() - started

    while True:
        try:
            message = pickle.loads(conn.recv_bytes())  # from the parent, our own process
            frames = [pickle.loads(frame) for frame in message]
        except (EOFError, OSError):
            return
        try:
            results, cpu = score_frames(frames, predict)
            reply: dict[str, Any] = {"results": results, "cpu": cpu}
        except Exception as err:  # a failing shadow answers with its error
            reply = {"error": f"{type(err).__name__}: {err}"}
        conn.send_bytes(json.dumps(reply).encode())


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
        if not self._process.is_alive():
            raise RuntimeError("the shadow process is gone")
        # frame by frame: one pickle call holds the interpreter lock, a short one lets the
        # event loop in between
        message = [pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL) for frame in frames]
        self._conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        reply = json.loads(self._conn.recv_bytes())
        if "error" in reply:
            raise RuntimeError(str(reply["error"]))
        results, cpu = reply.get("results"), reply.get("cpu")
        if not _well_formed(results, len(frames)) or not (
            cpu is None or isinstance(cpu, (int, float))
        ):
            raise RuntimeError("the shadow process sent something other than predictions")
        return results, None if cpu is None else float(cpu)

    def close(self) -> None:
        self._conn.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()
