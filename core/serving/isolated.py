"""The shadow in its own process, at the lowest CPU priority (``nice 19``).

A shadow on a thread shares the interpreter with the answers: under CPU saturation its
predictions hold the GIL and lengthen the champion's tail latency. In a child process it
only gets CPU the server does not use; when it falls behind, the mirror's bounded queue
drops requests instead. The child loads the model from the same verified bytes (scanned
again, allowlisted skops loader) and answers in JSON only (never a pickle): the parent
trusts nothing the shadow's process sends beyond strings and numbers.
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


def _child(conn: Any, files: dict[str, bytes], where: str, scan: Any, nice: int) -> None:
    """Child process: load, then answer ``predict`` requests until the pipe closes."""
    from mlsecops_provider.core.serving.loading import pyfunc_from_files
    from mlsecops_provider.core.serving.mirror import jsonable_values
    from mlsecops_provider.core.serving.protocol import enforce_schema

    try:
        os.nice(nice)
        pyfunc = pyfunc_from_files(files, where, scan)
        impl, schema = pyfunc._model_impl, pyfunc.metadata.get_input_schema()
        conn.send_bytes(json.dumps({"ok": True}).encode())
    except Exception as err:  # reported to the parent, which refuses to start
        conn.send_bytes(json.dumps({"error": f"{type(err).__name__}: {err}"}).encode())
        return
    while True:
        try:
            frame = pickle.loads(conn.recv_bytes())  # from the parent, our own process
        except (EOFError, OSError):
            return
        try:
            frame = enforce_schema(frame, schema, getattr(pyfunc, "loader_module", None))
            started = time.thread_time()
            raw = impl.predict(frame)
            cpu = time.thread_time() - started
            reply: dict[str, Any] = {"values": jsonable_values(raw), "cpu": cpu}
        except Exception as err:  # a failing shadow answers with its error
            reply = {"error": f"{type(err).__name__}: {err}"}
        conn.send_bytes(json.dumps(reply).encode())


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

    def predict(self, frame: Any) -> tuple[list[str], float]:
        """Each prediction's JSON and the child's CPU seconds; RuntimeError on failure."""
        if not self._process.is_alive():
            raise RuntimeError("the shadow process is gone")
        self._conn.send_bytes(pickle.dumps(frame))
        reply = json.loads(self._conn.recv_bytes())
        if "error" in reply:
            raise RuntimeError(str(reply["error"]))
        values = reply["values"]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise RuntimeError("the shadow process sent something other than predictions")
        return values, float(reply["cpu"])

    def close(self) -> None:
        self._conn.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()
