"""A TCP proxy in front of the S3 server whose outage the test switches on and off.

The Airflow connection points at the proxy. During an outage every new connection is read
from (part of a request arrives) and then reset, and open connections are cut: a writer
sees the store vanish mid-request, as in a network partition, and nothing it sent counts.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

from tests.production.servers import HOST


@dataclass
class S3Proxy:
    """Forwards ``127.0.0.1:port`` to ``target``; ``outage()`` cuts it off."""

    target: tuple[str, int]
    port: int = 0
    down: threading.Event = field(default_factory=threading.Event)
    refused: int = 0  # connections cut during outages
    _listener: socket.socket | None = None
    _open: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(64)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        threading.Thread(target=self._accept, name="s3-proxy", daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        self._cut_all()

    def outage(self, on: bool) -> None:
        if on:
            self.down.set()
            self._cut_all()
        else:
            self.down.clear()

    def _cut_all(self) -> None:
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _reset(sock)

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.down.is_set():
                self.refused += 1
                threading.Thread(target=_read_then_reset, args=(client,), daemon=True).start()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            _reset(client)
            return
        with self._lock:
            self._open.update((client, upstream))
        done = threading.Barrier(2, action=lambda: self._close(client, upstream))
        threading.Thread(target=_pump, args=(upstream, client, done), daemon=True).start()
        _pump(client, upstream, done)

    def _close(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._open.difference_update(sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _pump(source: socket.socket, sink: socket.socket, done: threading.Barrier) -> None:
    """Copy until end of stream (passed on as a half-close), or reset both on an error."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        _reset(source)
        _reset(sink)
    with contextlib.suppress(threading.BrokenBarrierError):
        done.wait(timeout=600)


def _read_then_reset(client: socket.socket) -> None:
    client.settimeout(2)
    with contextlib.suppress(OSError):
        client.recv(1024)  # the start of a request arrives, the rest never does
    _reset(client)


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
