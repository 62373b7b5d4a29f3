"""Red team, trust chain: the promotion CLIs fail in one line, exit 2, and fast.

A consumer's script must never mistake an unusable registry for a verdict, nor hang on it:
every error of ``verify-promotion``, ``rollback`` and ``audit verify`` is one line on stderr
(no traceback) and exit 2, within seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.promotion.signing import SigningKey

BAD_URIS = [
    "bogus://nowhere",
    "sqlite:////nonexistent/folder/mlflow.db",
    "sqlite:///{tmp}",  # a folder, not a database
    "sqlite:///{tmp}/garbage.db",  # a file that is not SQLite
    "http://127.0.0.1:9",  # nothing listens
]


@pytest.fixture()
def setup(tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "key.pub.pem"
    key.write_bytes(SigningKey.generate().public_key.pem)
    (tmp_path / "garbage.db").write_bytes(b"not a database" * 100)
    log = tmp_path / "audit.jsonl"
    log.write_bytes(b"")
    return {"key": str(key), "tmp": str(tmp_path), "log": log.as_uri()}


def _commands(setup: dict[str, str], uri: str) -> dict[str, list[str]]:
    common = ["--tracking-uri", uri]
    return {
        "verify-promotion": [
            "verify-promotion", "--registered-model", "m", "--public-key", setup["key"],
            "--log", setup["log"], *common,
        ],
        "rollback": [
            "rollback", "--registered-model", "m", "--public-key", setup["key"],
            "--log", setup["log"], *common,
        ],
        "audit verify": ["audit", "verify", "--log", setup["log"], *common],
    }  # fmt: skip


@pytest.mark.parametrize("template", BAD_URIS)
def test_unusable_tracking_uri_is_one_line_exit_2_and_fast(
    template: str, setup: dict[str, str], cli: Callable[..., Any]
) -> None:
    """No traceback, no minutes of retries: one line naming the problem, exit 2."""
    uri = template.format(tmp=setup["tmp"])
    for name, argv in _commands(setup, uri).items():
        started = time.monotonic()
        done = cli(argv)
        elapsed = time.monotonic() - started
        assert done.code == 2, (name, uri, done.out, done.err)
        lines = done.err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.err, (name, uri, done.err)
        assert lines[0].startswith(f"mlsecops {name}: error:"), lines
        assert elapsed < 30, (name, uri, elapsed)


def test_missing_or_bad_inputs_are_one_line_exit_2(
    setup: dict[str, str], cli: Callable[..., Any], tmp_path: Path
) -> None:
    """A missing key file, a non-PEM key, an absent --log: one line, exit 2."""
    (tmp_path / "bad.pem").write_text("not a key")
    db = f"sqlite:///{tmp_path}/ok.db"
    for argv in (
        ["verify-promotion", "--registered-model", "m", "--public-key", str(tmp_path / "no.pem")],
        ["verify-promotion", "--registered-model", "m", "--public-key", str(tmp_path / "bad.pem"),
         "--tracking-uri", db],
        ["rollback", "--registered-model", "m", "--public-key", setup["key"], "--log",
         (tmp_path / "none.jsonl").as_uri(), "--tracking-uri", db],
        ["audit", "verify", "--log", "s3x://bucket/log"],
        ["audit"],
    ):  # fmt: skip
        done = cli(argv)
        assert done.code == 2, (argv, done.out, done.err)
        assert len(done.err.strip().splitlines()) == 1 and "Traceback" not in done.err, argv
