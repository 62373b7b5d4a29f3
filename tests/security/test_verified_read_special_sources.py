"""Attack: feed the verified read (``fetch_verified``: the PII stream, the shard split, the
ingest copy) sources it does not expect: a FIFO, a character device, a directory, symlinks
(dangling, to a folder, re-pointed after the check), digests in other spellings, and S3
bodies that fail mid-stream, to make it hang, read unverified bytes, mislabel the failure or
leave its private copy behind.

Proves: special files and directories fail at once with a StorageError; a symlinked source is
read only through the checked copy; a wrong digest in any spelling is refused; an S3 error
mid-stream is a StorageError naming the S3 object (not a local write error); no temporary
copy outlives the call.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from mlsecops_provider.core.data.ingest import ingest_copy
from mlsecops_provider.core.errors import DigestMismatchError, NotFoundError, StorageError
from mlsecops_provider.core.pii.chunks import open_source
from mlsecops_provider.core.shards.split import split_dataset
from mlsecops_provider.core.storage import fetch_verified

CANARY = "canary.person@example.org"


def _csv(path: Path, note: str) -> bytes:
    pd.DataFrame({"id": [1, 2, 3], "note": [note, "plain", "text"]}).to_csv(path, index=False)
    return path.read_bytes()


def _readers(tmp_path: Path) -> dict[str, Callable[[str, str | None], Any]]:
    def fetch(uri: str, digest: str | None) -> Any:
        return fetch_verified(uri, digest, tmp_path / "task-tmp" / "copy")

    def stream(uri: str, digest: str | None) -> Any:
        with open_source(uri, digest, chunk_rows=2) as source:
            return [c.frame for c in source.chunks()]

    def ingest(uri: str, digest: str | None) -> Any:
        return ingest_copy(uri, digest, lambda fmt: (tmp_path / f"out.{fmt}").as_uri())

    def split(uri: str, digest: str | None) -> Any:
        return split_dataset(uri, digest, (tmp_path / "shards").as_uri(), shard_count=2)

    return {"fetch": fetch, "stream": stream, "ingest": ingest, "split": split}


READERS = ["fetch", "stream", "ingest", "split"]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "copy")


@pytest.mark.parametrize("reader", READERS)
def test_a_fifo_source_fails_at_once_instead_of_hanging(
    tmp_path: Path, private_tmp: Path, reader: str
) -> None:
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            _readers(tmp_path)[reader](fifo.as_uri(), hashlib.sha256(b"").hexdigest())
            outcome.append(None)
        except BaseException as err:  # noqa: BLE001 - recorded for the assertion
            outcome.append(err)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout=3)
    hung = worker.is_alive()
    if hung:  # release the blocked open(): a writer that writes nothing
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        worker.join(timeout=30)
    assert not hung, f"{reader}: open() of a FIFO source blocked (no writer): the task hangs"
    assert outcome and isinstance(outcome[0], StorageError), outcome
    assert _leftovers(private_tmp) == []


def test_a_character_device_source_is_refused_before_it_is_copied(tmp_path: Path) -> None:
    """``file:///dev/zero`` never ends: copying it fills the task's disk. The copy is capped
    here (RLIMIT_FSIZE, 3 MiB) so that a refusal by the limit is told apart from one by the
    reader itself."""
    script = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 20, 3 << 20))\n"
        "from mlsecops_provider.core.errors import StorageError\n"
        "from mlsecops_provider.core.storage import fetch_verified\n"
        "path = Path(sys.argv[1]) / 'copy'\n"
        "try:\n"
        "    fetch_verified('file:///dev/zero', '0' * 64, path)\n"
        "except StorageError as err:\n"
        "    size = path.stat().st_size if path.exists() else 0\n"
        "    print('StorageError', size, err)\n"
        "except Exception as err:\n"
        "    print('other', type(err).__name__, err)\n"
        "else:\n"
        "    print('read')\n"
    )
    folder = tmp_path / "dev"
    folder.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    kind, size, *message = done.stdout.split(" ", 2)
    assert kind == "StorageError", done.stdout + done.stderr
    assert "too large" not in " ".join(message), (
        f"/dev/zero was copied until the file size limit stopped it ({size} bytes): "
        f"{' '.join(message).strip()}"
    )
    assert int(size) == 0


@pytest.mark.parametrize("reader", READERS)
def test_a_directory_source_is_a_storage_error_and_leaves_nothing(
    tmp_path: Path, private_tmp: Path, reader: str
) -> None:
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(StorageError, match="directory"):
        _readers(tmp_path)[reader](folder.as_uri(), None)
    assert _leftovers(private_tmp) == []


@pytest.mark.parametrize("reader", READERS)
def test_symlinks_dangling_or_to_a_folder_fail_clearly(
    tmp_path: Path, private_tmp: Path, reader: str
) -> None:
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere.csv")
    with pytest.raises(NotFoundError):
        _readers(tmp_path)[reader](dangling.as_uri(), None)
    to_folder = tmp_path / "to-folder.csv"
    (tmp_path / "a-folder").mkdir()
    to_folder.symlink_to(tmp_path / "a-folder")
    with pytest.raises(StorageError):
        _readers(tmp_path)[reader](to_folder.as_uri(), None)
    assert _leftovers(private_tmp) == []


def test_a_symlink_repointed_after_the_check_is_never_followed(tmp_path: Path) -> None:
    checked = _csv(tmp_path / "checked.csv", "nothing here")
    _csv(tmp_path / "evil.csv", CANARY)
    link = tmp_path / "in.csv"
    link.symlink_to(tmp_path / "checked.csv")
    with open_source(link.as_uri(), hashlib.sha256(checked).hexdigest(), chunk_rows=2) as src:
        link.unlink()
        link.symlink_to(tmp_path / "evil.csv")
        (tmp_path / "checked.csv").write_text(f"id,note\n1,{CANARY}\n")
        rows = pd.concat([c.frame for c in src.chunks()])
    assert CANARY not in rows["note"].astype(str).tolist()
    assert rows["note"].tolist()[0] == "nothing here"


@pytest.mark.parametrize("reader", READERS)
def test_digest_spellings(tmp_path: Path, private_tmp: Path, reader: str) -> None:
    source = tmp_path / "in.csv"
    digest = hashlib.sha256(_csv(source, "nothing here")).hexdigest()
    read = _readers(tmp_path)[reader]
    for good in (digest, f"sha256:{digest}"):
        read(source.as_uri(), good)
    other = hashlib.sha256(b"other").hexdigest()
    wrong = [other, f"sha256:{other}", f"sha256:sha256:{digest}", f"{digest} ", "sha256:",
             f"md5:{digest}", digest[:-1], f"{digest}0"]  # fmt: skip
    if reader != "ingest":  # ingest documents "" as "no expected digest"
        wrong.append("")
    for bad in wrong:
        with pytest.raises(DigestMismatchError):
            read(source.as_uri(), bad)
    for spelling in (digest.upper(), f"SHA256:{digest}"):  # refused or accepted, never misread
        with contextlib.suppress(DigestMismatchError):
            read(source.as_uri(), spelling)
    assert _leftovers(private_tmp) == []


class _Body:
    """An S3 body that sends ``good`` bytes, then raises ``error``."""

    def __init__(self, good: bytes, error: Exception) -> None:
        self._good, self._error = good, error

    def read(self, size: int = -1) -> bytes:
        if self._good:
            piece, self._good = self._good[:size], self._good[size:]
            return piece
        raise self._error


class _Client:
    def __init__(self, body: Any = None, error: Exception | None = None) -> None:
        self._body, self._error = body, error

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's
        if self._error is not None:
            raise self._error
        return {"Body": self._body}


MID_STREAM = {
    "read-timeout": lambda: ReadTimeoutError(endpoint_url="https://s3", error="timed out"),
    "streaming": lambda: ResponseStreamingError(error="Connection broken: IncompleteRead"),
    "incomplete": lambda: IncompleteReadError(actual_bytes=10, expected_bytes=20),
    "reset": lambda: ConnectionResetError(104, "Connection reset by peer"),
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("error", sorted(MID_STREAM))
def test_an_s3_body_failing_mid_stream_is_a_read_error_naming_the_object(
    tmp_path: Path, private_tmp: Path, reader: str, error: str
) -> None:
    uri = "s3://bucket/data/in.csv"
    good = _csv(tmp_path / "in.csv", "nothing here") * 2000
    factory = lambda: _Client(_Body(good, MID_STREAM[error]()))  # noqa: E731
    readers = {
        "fetch": lambda: fetch_verified(uri, None, private_tmp / "copy", factory),
        "stream": lambda: open_source(uri, None, factory).__enter__(),
        "ingest": lambda: ingest_copy(uri, None, lambda f: (tmp_path / "o").as_uri(), factory),
        "split": lambda: split_dataset(
            uri, None, (tmp_path / "s").as_uri(), shard_count=2, factory=factory
        ),  # fmt: skip
    }
    with pytest.raises(StorageError) as raised:
        readers[reader]()
    assert not isinstance(raised.value, (NotFoundError, DigestMismatchError))
    message = str(raised.value)
    assert uri in message, message
    assert str(private_tmp) not in message and "cannot write" not in message, message
    assert _leftovers(private_tmp) == []


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject"),
         NotFoundError),
        (ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject"),
         StorageError),
        (ConnectTimeoutError(endpoint_url="https://s3"), StorageError),
    ],
    ids=["no-such-key", "access-denied", "connect-timeout"],
)  # fmt: skip
def test_an_s3_get_that_fails_names_the_object(
    private_tmp: Path, error: Exception, kind: type[Exception]
) -> None:
    uri = "s3://bucket/data/in.csv"
    with pytest.raises(kind) as raised:
        fetch_verified(uri, None, private_tmp / "copy", lambda: _Client(error=error))
    assert uri in str(raised.value) and "cannot write" not in str(raised.value)
    assert _leftovers(private_tmp) == []


def test_a_digest_mismatch_leaves_no_private_copy(tmp_path: Path, private_tmp: Path) -> None:
    source = tmp_path / "in.csv"
    _csv(source, CANARY)
    for reader in ("stream", "ingest", "split"):
        with pytest.raises(DigestMismatchError):
            _readers(tmp_path)[reader](source.as_uri(), "0" * 64)
    assert _leftovers(private_tmp) == []
