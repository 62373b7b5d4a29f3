"""Test settings: every test session gets its own MLSECOPS_HOME, Airflow DB and MLflow store.

The variables are set here, before Airflow or MLflow is imported by any test module.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="mlsecops-test-"))
for _key in list(os.environ):
    if _key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "MLFLOW_", "MLSECOPS_", "AWS_")):
        del os.environ[_key]
os.environ.update(
    {
        "MLSECOPS_HOME": str(_SESSION_HOME),
        "AIRFLOW_HOME": str(_SESSION_HOME / "airflow"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "MLSECOPS_ADVISORY_DB": str(Path(__file__).parent / "fixtures" / "advisories"),
    }
)

from mlsecops_provider.include.environment import configure  # noqa: E402

configure(_SESSION_HOME)


@pytest.fixture(scope="session")
def session_home() -> Path:
    return _SESSION_HOME


@pytest.fixture(scope="session", autouse=True)
def promotion_keys() -> Path:
    """The session's promotion key pair, where the default policy and the DAG look for it."""
    from mlsecops_provider.core.promotion.signing import ensure_demo_keys

    ensure_demo_keys(_SESSION_HOME)
    return _SESSION_HOME / "keys"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite Airflow metadata DB for this session."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1; ``AWS_ENDPOINT_URL`` points boto3 at it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        yield endpoint
    finally:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        server.stop()


@pytest.fixture()
def s3_bucket(moto_endpoint: str) -> str:
    """A fresh bucket on the moto server; returns its name."""
    import uuid

    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=name)
    return name


@dataclass(frozen=True)
class CliResult:
    """What a user sees after running ``mlsecops ARGS``: the exit code, stdout and stderr."""

    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture()
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``mlsecops ARGS`` as a user does: ``main([...])``, argparse's exits included.

    stdout and stderr are captured into the result and also written through to the test's
    own streams, so ``capsys.readouterr()`` still sees them.
    """
    import contextlib
    import io

    from mlsecops_provider.core.cli.main import main

    def run(argv: Sequence[str]) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in argv])
            except SystemExit as stop:  # --help, usage errors
                code = 0 if stop.code is None else stop.code if isinstance(stop.code, int) else 2
        sys.stdout.write(out.getvalue())
        sys.stderr.write(err.getvalue())
        return CliResult(int(code), out.getvalue(), err.getvalue())

    return run
