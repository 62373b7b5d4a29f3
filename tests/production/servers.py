"""Real servers on 127.0.0.1 for the production-path test: processes, PostgreSQL, moto, MLflow.

Every server is a child process in its own session with its output in a log file; waits are
bounded and a timeout (or a server that exits early) raises :class:`ServerError` with the
tail of the logs. :class:`Processes` stops everything it started, in reverse order.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
HOST = "127.0.0.1"
BIN = Path(sys.executable).parent  # the venv's console scripts: airflow, mlflow, moto_server
PG_ROOT = Path("/usr/lib/postgresql")
PG_MISSING = (
    "PostgreSQL server binaries not found (no {root}/*/bin/pg_ctl). The production-path test "
    "runs Airflow on Debian's PostgreSQL: `make test` installs it (apt-get install -y "
    "postgresql); run `make test`, or install that package, then run this test again."
)


class ServerError(RuntimeError):
    """A server did not start, stopped early, or did not answer in time."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        return f"(cannot read {path}: {err.strerror})"
    return "\n".join(text.splitlines()[-lines:])


def http_status(url: str, timeout: float = 3.0) -> int:
    """The HTTP status of a GET (a connection error raises)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


@dataclass
class Proc:
    """One server process and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send(self, sig: int) -> None:
        """Signal the whole process group (the task runners a scheduler started, too)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def wait(self, timeout: float) -> bool:
        try:
            self.popen.wait(max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            return False
        return True


@dataclass
class Processes:
    """The servers of one test module: started in order, stopped in reverse order."""

    log_dir: Path
    procs: list[Proc] = field(default_factory=list)
    finalizers: list[Callable[[], None]] = field(default_factory=list)
    other_logs: list[Path] = field(default_factory=list)  # logs kept outside ``log_dir``

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> Proc:
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.log_dir,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def run(self, name: str, argv: Sequence[str], env: Mapping[str, str], timeout: float) -> None:
        """Run a command to completion, its output appended to ``<name>.log``."""
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            try:
                subprocess.run(
                    list(argv),
                    env=dict(env),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=True,
                    cwd=self.log_dir,
                )
            except subprocess.TimeoutExpired as err:
                raise ServerError(f"{name}: no result after {timeout:.0f}s\n{tail(log)}") from err
            except subprocess.CalledProcessError as err:
                raise ServerError(f"{name}: exit code {err.returncode}\n{tail(log)}") from err

    def stop(self, proc: Proc, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
        """Stop one server on purpose (a fault test): ``sig`` to its process group, SIGKILL
        after ``grace`` seconds; it is no longer watched (its log stays in the report)."""
        proc.send(sig)
        if not proc.wait(grace):
            proc.send(signal.SIGKILL)
            proc.wait(10.0)
        with proc.log.open("a") as out:
            out.write(f"\n[test harness] stopped on purpose with signal {sig}\n")
        if proc in self.procs:
            self.procs.remove(proc)

    def on_stop(self, finalizer: Callable[[], None]) -> None:
        self.finalizers.append(finalizer)

    def stop_all(self, grace: float = 10.0) -> None:
        """SIGTERM to every server at once, SIGKILL to the process groups after ``grace``
        seconds; then the finalizers (PostgreSQL last)."""
        for proc in reversed(self.procs):
            proc.popen.terminate()  # the leader stops its own workers
        began = time.monotonic()
        for proc in reversed(self.procs):
            exited = proc.wait(began + grace - time.monotonic())
            with proc.log.open("a") as out:
                out.write(
                    f"\n[test harness] SIGTERM: exited after {time.monotonic() - began:.1f}s\n"
                    if exited
                    else f"\n[test harness] SIGTERM: no exit after {grace:.0f}s, SIGKILL\n"
                )
            proc.send(signal.SIGKILL)  # children that outlived their parent
            proc.wait(10.0)
        for finalizer in reversed(self.finalizers):
            finalizer()

    def wait_for(self, what: str, check: Callable[[], T], timeout: float) -> T:
        """Poll ``check`` until it returns a truthy value; fail if a server exits meanwhile."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            for proc in self.procs:
                if not proc.alive():
                    raise ServerError(
                        f"{proc.name} exited with code {proc.popen.returncode} while waiting "
                        f"for {what}\n--- {proc.log}\n{tail(proc.log)}"
                    )
            try:
                result = check()
            except Exception as err:  # not up yet: connection refused, 503, ...
                last = err
            else:
                if result:
                    return result
            time.sleep(0.5)
        raise ServerError(
            f"timed out after {timeout:.0f}s waiting for {what}"
            + (f" (last error: {type(last).__name__}: {last})" if last else "")
            + "\n"
            + self.report(40)
        )

    def report(self, lines: int = 80) -> str:
        """The tail of every log file of this module, for a failure message."""
        parts = []
        for log in [*sorted(self.log_dir.glob("*.log")), *self.other_logs]:
            parts.append(f"--- {log} (last {lines} lines)\n{tail(log, lines)}")
        return "\n".join(parts)


def find_pg_bin() -> Path:
    """The newest Debian PostgreSQL server's bin folder; a clear failure when absent."""
    found = sorted(
        PG_ROOT.glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise ServerError(PG_MISSING.format(root=PG_ROOT))
    return found[-1].parent


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with password (SCRAM) authentication."""

    bin: Path
    base: Path
    port: int
    user: str = "mlsecops"
    password: str = "mlsecops-pg-Pa55"

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "postgres.log"

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{self.user}:{self.password}@{HOST}:{self.port}/{database}"

    def _as_owner(self) -> dict[str, Any]:
        """PostgreSQL refuses to run as root: run its server commands as ``postgres``."""
        if os.geteuid() != 0:
            return {}
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError as err:
            raise ServerError(
                "running as root, and PostgreSQL refuses root: no 'postgres' user to run it as "
                "(Debian's postgresql package creates one)"
            ) from err
        return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}

    def _pg(self, argv: Sequence[str], timeout: float, owner: bool = True) -> None:
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "PGPASSWORD": self.password}
        with (self.base / "pg_commands.log").open("ab") as out:
            try:
                subprocess.run(
                    [str(self.bin / argv[0]), *argv[1:]],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=True,
                    **(self._as_owner() if owner else {}),
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
                raise ServerError(
                    f"PostgreSQL: {' '.join(argv)} failed ({err})\n"
                    f"{tail(self.base / 'pg_commands.log')}\n--- {self.log}\n{tail(self.log)}"
                ) from err

    def start(self) -> None:
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        owner = self._as_owner()
        if owner:
            for path in (self.base, pwfile):
                os.chown(path, owner["user"], owner["group"])
        self._pg(
            ["initdb", "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}"]
            + ["--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"],
            timeout=120,
        )
        options = (
            f"-c listen_addresses={HOST} -p {self.port} -k {self.base} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._pg(
            ["pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options]
            + ["-w", "-t", "60", "start"],
            timeout=90,
        )

    def createdb(self, name: str) -> None:
        self._pg(
            ["createdb", "-h", HOST, "-p", str(self.port), "-U", self.user, name],
            timeout=30,
            owner=False,
        )

    def stop(self, keep_log: Path | None = None) -> None:
        """``pg_ctl stop -m fast``, keep a copy of the server log, remove the cluster."""
        began = time.monotonic()
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(ServerError):
                self._pg(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"], 60)
        with self.log.open("a") as out:
            out.write(f"\n[test harness] pg_ctl stop: {time.monotonic() - began:.1f}s\n")
        if keep_log is not None:
            with contextlib.suppress(OSError):
                shutil.copyfile(self.log, keep_log)
        shutil.rmtree(self.base, ignore_errors=True)


def start_postgres(procs: Processes) -> Postgres:
    """initdb into a fresh folder, ``pg_ctl start`` on a free port; stopped with ``procs``."""
    pg_bin = find_pg_bin()
    # Not under pytest's tmp (0700 root): the ``postgres`` user must reach its folder.
    base = Path(tempfile.mkdtemp(prefix="mlsecops-pg-"))
    server = Postgres(pg_bin, base, free_port())
    procs.on_stop(lambda: server.stop(keep_log=procs.log_dir / "postgres.log"))
    procs.other_logs.append(server.log)
    server.start()
    return server


def start_moto(procs: Processes, env: Mapping[str, str]) -> str:
    """A moto S3 server in its own process; returns its endpoint URL."""
    port = free_port()
    procs.start("moto", [str(BIN / "moto_server"), "-H", HOST, "-p", str(port)], env)
    endpoint = f"http://{HOST}:{port}"
    procs.wait_for("the moto server", lambda: http_status(endpoint + "/") < 500, 60)
    return endpoint


def start_mlflow(
    procs: Processes, env: Mapping[str, str], backend_uri: str, artifacts: str
) -> tuple[str, Proc]:
    """``mlflow server`` with a SQL backend and proxied S3 artifacts; returns its URL."""
    port = free_port()
    argv = [str(BIN / "mlflow"), "server", "--backend-store-uri", backend_uri]
    argv += ["--artifacts-destination", artifacts, "--host", HOST, "--port", str(port)]
    argv += ["--workers", "1"]
    proc = procs.start("mlflow", argv, env)
    return f"http://{HOST}:{port}", proc


REDIS_SERVER = Path("/usr/bin/redis-server")
REDIS_MISSING = (
    "Redis not found ({path}). The CeleryExecutor test uses Debian's redis-server as its "
    "broker: `make test` installs it (`make redis`: apt-get install -y redis-server); run "
    "`make test`, or install that package, then run this test again."
)


@dataclass
class Redis:
    """Our own ``redis-server`` on 127.0.0.1 (no persistence), restartable on its port."""

    procs: Processes
    base: Path
    port: int
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        if not REDIS_SERVER.is_file():
            raise ServerError(REDIS_MISSING.format(path=REDIS_SERVER))
        argv = [str(REDIS_SERVER), "--bind", HOST, "--port", str(self.port)]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.base)]
        argv += ["--protected-mode", "yes", "--daemonize", "no"]
        self.proc = self.procs.start("redis", argv, {"PATH": os.environ.get("PATH", "")})
        self.procs.wait_for(f"Redis on port {self.port}", self.ping, 30)

    def ping(self) -> bool:
        with socket.create_connection((HOST, self.port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def restart(self, down: float = 0.0) -> None:
        """SIGTERM, ``down`` seconds without a broker, then a fresh (empty) server."""
        if self.proc is not None:
            self.procs.stop(self.proc)
        time.sleep(down)
        self.start()


def start_redis(procs: Processes, base: Path) -> Redis:
    """``redis-server`` on a free port with ``--save "" --appendonly no`` in ``base``."""
    base.mkdir(parents=True, exist_ok=True)
    server = Redis(procs, base, free_port())
    server.start()
    return server
