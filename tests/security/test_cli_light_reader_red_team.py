"""Attack: break ``mlsecops hash`` / ``mlsecops verify`` through the light reading of their
arguments (argv read without argparse), the ``_thread`` hashing workers and the manifest hex
check without ``re``: argv spelt with unicode look-alikes, surrogate-escaped bytes,
whitespace, ``=`` in odd places, negative numbers, abbreviations, option values equal to
command names or global flags, ``-v`` after the command, odd ``--workers`` spellings and
environment variables; workers that fail midway, raise KeyboardInterrupt, cannot be started
or are interrupted by SIGINT; thousands of files and any ``--workers`` count; digests of
non-ASCII digits, wrong lengths and ``str`` subclasses.

Proves: for every argv the light reader either declines or reads exactly what argparse
reads, and ``main`` behaves the same (exit code, stdout, stderr) with the light reader
switched off; a tampered folder never verifies; the workers hash exactly the bytes of the
PATH given (each file by its own bytes, whatever the worker count) and any failure in them
is exit 2 (130 when interrupted) with one line on stderr and no digest or ``OK``; error
cases through the console script ``run()`` are one line and exit 2; ``check_digest`` agrees
with ``[0-9a-f]{64}`` fullmatch on every ``str`` (one divergence for ``str`` subclasses
whose iteration lies, found by this red team, is fixed: the check reads the characters).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import mmap
import os
import random
import re
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core import hashing
from mlsecops_provider.core.cli import hash_cmd, main
from mlsecops_provider.core.cli.light import read_argv
from mlsecops_provider.core.cli.parser import build_parser
from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.manifest import Manifest, check_digest

LIGHT = {command.name: command for command in hash_cmd.LIGHT_COMMANDS}
MAIN_MODULE = sys.modules["mlsecops_provider.core.cli.main"]  # the package shadows the name
_PARSER = build_parser(("mlsecops_provider.core.cli.hash_cmd",))  # reusable across parses


def argparse_reading(argv: list[str]) -> dict[str, object] | None:
    """What argparse makes of ``argv`` (its attributes), or ``None`` if it refuses it."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return vars(_PARSER.parse_args(argv))
        except SystemExit:
            return None


def assert_declined_or_same(argvs: list[list[str]]) -> int:
    """Every argv: the light reader declines or agrees with argparse; how many it read."""
    read = 0
    for argv in argvs:
        light = read_argv(argv, LIGHT)
        if light is not None:
            read += 1
            assert vars(light) == argparse_reading(argv), argv
    return read


def spellings(command: str, values: list[str]) -> list[list[str]]:
    """``values`` in every slot of a hash/verify argv: PATH, option values, option names."""
    argvs = []
    for value in values:
        argvs += [
            [command, value],
            [command, value, "--manifest", "m.json"],
            [command, "model", "--manifest", value],
            [command, "model", f"--manifest={value}"],
            [command, "model", "--out", value],
            [command, f"--out={value}", "model"],
            [command, "model", "--workers", value],
            [command, "model", f"--workers={value}", "--manifest=m.json"],
            [command, value, "model", "--manifest", "m.json"],
            [value, command, "model", "--manifest", "m.json"],
        ]
    return argvs


# ---------------------------------------------------------------------------- 1. the reading


LOOKALIKES = [
    "\u2014manifest",  # em dash
    "\u2013\u2013out",  # en dashes
    "\uff0d\uff0dout",  # fullwidth hyphen-minus
    "\u2212\u2212workers",  # minus sign
    "--\u043eut",  # Cyrillic o
    "--OUT",
    "--Manifest=m.json",
    "\u200b--out",  # zero-width space first: a positional for argparse too
    "--out\u200b",
    "--out\u200b=x",
    "\udcff",  # a surrogate-escaped byte (os.fsdecode of b"\xff")
    "\udc80--out",
    "--out=\udcff",
    "--manifest\udcff=m",
    "mod\x00el",
    "\u00e9",
    "e\u0301",
    "\U0001f4a5",
    "\ufeff--out",
]
WHITESPACE = [
    " --out",
    "--out ",
    "--out= x",
    "--out =x",
    " ",
    "\t",
    "\n",
    "x y",
    "-x y",
    "--out x",
    "--manifest=m.json ",
    "\u00a0--out",
    "\u3000",
]


def test_unicode_and_surrogate_lookalikes_of_options_are_read_as_argparse_reads_them() -> None:
    """Dash look-alikes, zero-width characters, surrogate-escaped bytes: never read otherwise."""
    argvs = spellings("verify", LOOKALIKES) + spellings("hash", LOOKALIKES)
    assert assert_declined_or_same(argvs) > 40
    # a look-alike of an option is a PATH for both, never the option itself
    light = read_argv(["verify", "\u2014manifest=evil.json", "--manifest", "good.json"], LIGHT)
    assert light is not None and light.path == "\u2014manifest=evil.json"
    assert light.manifest == "good.json"


def test_whitespace_around_options_and_values_is_read_as_argparse_reads_it() -> None:
    """Leading/trailing spaces, tabs, newlines and NBSP around options never read differently."""
    argvs = spellings("verify", WHITESPACE) + spellings("hash", WHITESPACE)
    assert assert_declined_or_same(argvs) > 30
    assert read_argv(["hash", "--out ", "m"], LIGHT) is None  # argparse: "--out " is a PATH


def test_equals_sign_placement_is_read_as_argparse_reads_it() -> None:
    """``=`` alone, doubled, leading, trailing or inside values never reads differently."""
    values = ["=", "==", "=x", "x=", "a=b=c", "--out==x", "--manifest==m", "--=x", "-=x"]
    argvs = spellings("verify", values) + spellings("hash", values)
    argvs += [
        ["verify", "model", "--manifest==good.json"],
        ["verify", "model", "--manifest", "=good.json"],
        ["hash", "model", "--out=--manifest=evil.json"],
        ["hash", "model=--out", "--out=model"],
        ["verify", "--manifest=a=--manifest=b", "model"],
        ["hash", "model", "--workers==2"],
    ]
    assert assert_declined_or_same(argvs) > 20
    light = read_argv(["verify", "model", "--manifest==good.json"], LIGHT)
    assert light is not None and light.manifest == "=good.json"  # as argparse's split("=", 1)


def test_negative_numbers_are_left_to_argparse() -> None:
    """``-1``, ``-0``, ``-1e3``, ``-.5`` as PATH or option value are declined (argparse decides)."""
    values = ["-1", "-0", "-1e3", "-.5", "-2j", "-inf", "-nan", "- 1", "-1 "]
    argvs = spellings("verify", values) + spellings("hash", values)
    for argv in argvs:
        if any(token.startswith("-") and token in values for token in argv):
            assert read_argv(argv, LIGHT) is None, argv
    assert_declined_or_same(argvs)
    assert argparse_reading(["hash", "-1"])["path"] == "-1"  # type: ignore[index]


def test_abbreviations_and_prefixes_are_left_to_argparse() -> None:
    """Abbreviated options (``--man``, ``--w``, ``--verb``) and ``-vv`` are never read as light."""
    argvs = [
        ["verify", "model", "--man", "evil.json"],
        ["verify", "model", "--manifes=evil.json"],
        ["verify", "model", "--manifest", "good.json", "--man=evil.json"],
        ["hash", "model", "--o", "x"],
        ["hash", "model", "--w", "2"],
        ["hash", "model", "--wor=2"],
        ["--verb", "hash", "model"],
        ["--deb", "hash", "model"],
        ["-vv", "hash", "model"],
        ["--debug=1", "hash", "model"],
        ["-h", "hash", "model"],
        ["has", "model"],
        ["verif", "model", "--manifest", "m.json"],
        ["HASH", "model"],
    ]
    for argv in argvs:
        assert read_argv(argv, LIGHT) is None, argv
    assert_declined_or_same(argvs)
    repeated = [
        ["-v", "-v", "hash", "model"],
        ["--debug", "-v", "--debug", "verify", "m", "--manifest", "x"],
    ]
    assert assert_declined_or_same(repeated) == 2  # exact global flags, repeated: as argparse


def test_option_values_equal_to_command_names_or_flags_are_read_as_argparse_reads_them() -> None:
    """``--manifest hash``, ``--out verify``, PATH ``-v`` or ``--debug`` never read differently."""
    values = ["hash", "verify", "validate", "-v", "--verbose", "--debug", "-h", "--help", "--"]
    values += ["--out", "--manifest", "--workers", "--manifest=evil.json"]
    argvs = spellings("verify", values) + spellings("hash", values)
    read = assert_declined_or_same(argvs)
    assert read > 10
    light = read_argv(["verify", "verify", "--manifest", "hash"], LIGHT)
    assert light is not None and (light.path, light.manifest) == ("verify", "hash")
    assert read_argv(["verify", "model", "--manifest", "--manifest=evil.json"], LIGHT) is None


def test_global_flags_after_the_command_are_refused_not_read() -> None:
    """``-v``/``--debug`` after the command: declined, and ``main`` exits 2 (as argparse does)."""
    argvs = [
        ["hash", "-v", "model"],
        ["hash", "model", "-v"],
        ["verify", "model", "--manifest", "m.json", "--debug"],
        ["verify", "--verbose", "model", "--manifest", "m.json"],
        ["hash", "model", "--out", "-v"],
    ]
    for argv in argvs:
        assert read_argv(argv, LIGHT) is None, argv
        assert argparse_reading(argv) is None, argv
        with contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2, argv


def test_workers_spellings_are_converted_exactly_as_argparse_converts_them() -> None:
    """Unicode digits, ``+``, ``_``, spaces, huge and refused ``--workers`` values never differ."""
    values = ["2", " 2", "2 ", "+2", "1_0", "\u0663", "\uff12", "\u0967", "0", "00", "-0", "0x2"]
    values += ["2.0", "1e1", "two", "", "inf", "nan", "\u00b2", "\u2162", "9" * 4000, "9" * 5000]
    read = 0
    for value in values:
        for argv in (["hash", "m", "--workers", value], ["verify", "m", f"--workers={value}"]):
            argv = [*argv, "--manifest", "x"] if argv[0] == "verify" else argv
            light = read_argv(argv, LIGHT)
            reading = argparse_reading(argv)
            if light is not None:
                read += 1
                assert vars(light) == reading, argv
                assert isinstance(light.workers, int) and light.workers >= 1
            if reading is None:
                assert light is None, argv  # argparse refuses it: the light reader never reads it
    assert read >= 12
    light = read_argv(["hash", "m", "--workers", "\u0663"], LIGHT)
    assert light is not None and light.workers == 3  # argparse's int() reads it the same


def test_every_short_argv_over_a_hostile_alphabet_reads_as_argparse_or_declines() -> None:
    """Exhaustively, every argv of up to 4 tokens after the command (plus global flags)."""
    alphabet = ["m", "hash", " 2", "\u0663", "\udcff", "a=b", "--out", "--manifest"]
    alphabet += ["--workers", "--out=x", "--manifest=y", "--workers=2", "-v", "--", "-1"]
    argvs = [
        [*head, command, *tail]
        for n in range(5)
        for command in ("hash", "verify")
        for tail in itertools.product(alphabet, repeat=n)
        for head in ([], ["-v"], ["--debug", "--verbose"])
    ]
    assert len(argvs) > 300_000
    assert assert_declined_or_same(argvs) > 2000


def test_random_argv_over_a_wide_alphabet_reads_as_argparse_or_declines() -> None:
    """30,000 random argvs of every hostile token above: no reading of the light reader's own."""
    rng = random.Random(14112)
    plain = ["model", "m.json", "--out", "--manifest", "--workers", "2", "hash", "verify"]
    tokens = plain * 4 + LOOKALIKES + WHITESPACE + ["-1", "--", "-", "=", "--man", "-v"]
    tokens += ["--debug", "--out=", "--workers=0", "--workers=\u0663", "--manifest=x=y"]
    heads = ["-v", "--verbose", "--debug", "--verb", "-vv", "hash", "verify", "--"]
    argvs = []
    for _ in range(30_000):
        head = [rng.choice(heads) for _ in range(rng.choice((0, 0, 1, 2)))]
        tail = [rng.choice(tokens) for _ in range(rng.randint(0, 6))]
        argvs.append([*head, rng.choice(["hash", "verify"]), *tail])
    assert assert_declined_or_same(argvs) > 800  # 1,083 with this seed


def test_environment_variables_do_not_change_the_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLSECOPS_DEBUG, COLUMNS, POSIXLY_CORRECT, LANG and the int digit limit: same readings."""
    argvs = spellings("verify", ["model", "2", "\u0663", "9" * 5000])
    argvs += spellings("hash", ["model", "m=x", "9" * 5000])
    for name, value in [
        ("MLSECOPS_DEBUG", "1"),
        ("COLUMNS", "5"),
        ("POSIXLY_CORRECT", "1"),
        ("LANG", "de_DE.UTF-8"),
        ("LC_ALL", "C"),
    ]:
        monkeypatch.setenv(name, value)
    assert assert_declined_or_same(argvs) > 10
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # what PYTHONINTMAXSTRDIGITS=0 does
    try:
        light = read_argv(["hash", "m", "--workers", "9" * 5000], LIGHT)
        assert light is not None and vars(light) == argparse_reading(
            ["hash", "m", "--workers", "9" * 5000]
        )
    finally:
        sys.set_int_max_str_digits(limit)


# ---------------------------------------------------------------------------- end to end


@pytest.fixture
def signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``model`` (40 files) with its manifest ``good.json``, and a tampered copy ``evil``."""
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    for index in range(40):
        (model / ("sub" if index % 3 else "") / f"w{index:02}.bin").write_bytes(b"w%d" % index)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["hash", "model", "--out", "good.json"]) == 0
    evil = tmp_path / "evil"
    (evil / "sub").mkdir(parents=True)
    for index in range(40):
        (evil / ("sub" if index % 3 else "") / f"w{index:02}.bin").write_bytes(b"w%d" % index)
    (evil / "sub" / "w01.bin").write_bytes(b"poisoned")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["hash", "evil", "--out", "evil.json"]) == 0
    return tmp_path


def _outcome(argv: list[str], monkeypatch: pytest.MonkeyPatch, *, light: bool) -> tuple[Any, ...]:
    out, err = io.StringIO(), io.StringIO()
    with monkeypatch.context() as patch:
        if not light:
            patch.setattr(MAIN_MODULE, "_light_arguments", lambda argv: None)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as stop:  # argparse's usage error
                code = stop.code
    return code, out.getvalue(), err.getvalue()


E2E = [
    ["verify", "evil", "--manifest", "good.json"],
    ["verify", "--manifest=good.json", "evil"],
    ["verify", "evil", "--manifest=good.json", "--workers", "\u0663"],
    ["--debug", "verify", "--workers=7", "evil", "--manifest", "good.json"],
    ["verify", "model", "--manifest", "good.json"],
    ["verify", "model", "--manifest=good.json", "--workers", "1"],
    ["verify", "model", "--manifest", "evil.json"],
    ["verify", "model", "--manifest", "good.json", "--manifest", "evil.json"],
    ["verify", "model", "--manifest=evil.json", "--manifest=good.json"],
    ["verify", "model", "--manifest", " good.json"],
    ["verify", "model ", "--manifest", "good.json"],
    ["verify", "model", "--manifest", "\u2014good.json"],
    ["verify", "model\udcff", "--manifest", "good.json"],
    ["verify", "model", "--manifest", "good.json", "--workers", "0"],
    ["verify", "model", "--manifest", "good.json", "--workers", "-1"],
    ["verify", "model", "--manifest", "good.json", "-v"],
    ["verify", "model", "--manifest", "verify"],
    ["verify", "model", "evil", "--manifest", "good.json"],
    ["hash", "model"],
    ["hash", "evil", "--workers", "64"],
    ["hash", "model", "--out", "model"],
    ["hash", "model\udcff"],
]


def test_light_and_argparse_paths_behave_identically_end_to_end(
    signed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same exit code, stdout and stderr with the light reader on and off; evil never exits 0."""
    digest = {}
    for argv in E2E:
        light = _outcome(argv, monkeypatch, light=True)
        heavy = _outcome(argv, monkeypatch, light=False)
        assert light == heavy, argv
        if "verify" in argv and "evil" in argv:  # the tampered folder as PATH
            assert light[0] in (1, 2), argv
        digest[tuple(argv)] = light
    assert digest[("verify", "model", "--manifest", "good.json")][0] == 0
    assert digest[("verify", "model", "--manifest", "evil.json")][0] == 1
    assert digest[("verify", "evil", "--manifest", "good.json")][0] == 1


# ---------------------------------------------------------------------------- 2. the workers


def _independent_root(folder: Path) -> str:
    """The root digest computed here from the bytes on disk (no code of the package)."""
    files = sorted(
        (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()),
        key=lambda rel: rel.split("/"),
    )
    root = hashlib.sha256()
    for rel in files:
        root.update(hashlib.sha256((folder / rel).read_bytes()).digest())
    return root.hexdigest()


def test_many_files_on_any_worker_count_hash_exactly_the_bytes_of_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """600 files (two memory-mapped) on 1..10**6 workers: the digest of PATH's bytes, no other."""
    folder = tmp_path / "model"
    rng = random.Random(7)
    for index in range(600):
        sub = folder / f"d{index % 17}" / f"e{index % 5}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{index}.bin").write_bytes(rng.randbytes(rng.randint(0, 300)))
    (folder / "big-1.bin").write_bytes(rng.randbytes(hashing.MMAP_MIN_SIZE + 17))
    (folder / "big-2.bin").write_bytes(rng.randbytes(hashing.MMAP_MIN_SIZE))
    other = tmp_path / "other"
    other.mkdir()
    (other / "f.bin").write_bytes(b"not the path")
    expected = _independent_root(folder)
    for workers in ("1", "2", "3", "7", "64", "602", "1000000", "9" * 400):
        assert main(["hash", str(folder), "--workers", workers]) == 0
        assert capsys.readouterr().out.strip() == expected, workers
    single = folder / "big-1.bin"
    assert main(["hash", str(single), "--workers", "8"]) == 0
    assert capsys.readouterr().out.strip() == hashlib.sha256(single.read_bytes()).hexdigest()


def test_workers_never_share_a_read_buffer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No mmap, 12 files over 1 MiB read on 6 workers: each digest is its own file's."""
    folder = tmp_path / "model"
    folder.mkdir()
    for index in range(12):
        (folder / f"w{index}.bin").write_bytes(
            bytes([index]) * (hashing.BUFFER_SIZE + 4099 * index)
        )

    def no_mmap(*args: object, **kwargs: object) -> mmap.mmap:
        raise OSError("no mmap here")

    real_readv = os.readv

    def slow_readv(fd: int, buffers: list[bytearray]) -> int:
        time.sleep(0.001)  # the other workers run between two reads of a file
        return real_readv(fd, buffers)

    monkeypatch.setattr(hashing.mmap, "mmap", no_mmap)
    monkeypatch.setattr(hashing.os, "readv", slow_readv)
    manifest = hashing.hash_path(folder, workers=6)
    for index in range(12):
        data = (folder / f"w{index}.bin").read_bytes()
        assert manifest.files[f"w{index}.bin"] == hashlib.sha256(data).hexdigest()
    assert manifest.root_digest == _independent_root(folder)


def _fail_midway(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """``name`` fails with EIO on its second read, after its first MiB was hashed."""
    real_open, real_readv = hashing._open, os.readv
    targets: dict[int, int] = {}
    failures: list[int] = []

    def opening(source: str) -> int:
        fd = real_open(source)
        if source.endswith(name):
            targets[fd] = 0
        return fd

    def readv(fd: int, buffers: list[bytearray]) -> int:
        if fd in targets:
            targets[fd] += 1
            if targets[fd] == 2:
                failures.append(fd)
                raise OSError(5, "Input/output error")
        return real_readv(fd, buffers)

    def no_mmap(*args: object, **kwargs: object) -> mmap.mmap:
        raise OSError("no mmap here")

    monkeypatch.setattr(hashing, "_open", opening)
    monkeypatch.setattr(hashing.os, "readv", readv)
    monkeypatch.setattr(hashing.mmap, "mmap", no_mmap)
    return failures


def test_a_file_failing_midway_in_a_worker_fails_the_whole_command(
    signed: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A read error after a file's first MiB: exit 2, one stderr line, no digest and no ``OK``."""
    big = signed / "model" / "sub" / "w02.bin"
    big.write_bytes(b"x" * (3 * hashing.BUFFER_SIZE))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["hash", "model", "--out", "good.json"]) == 0
    capsys.readouterr()
    failures = _fail_midway(monkeypatch, "w02.bin")
    for argv in (
        ["verify", "model", "--manifest", "good.json", "--workers", "4"],
        ["hash", "model", "--workers", "4"],
        ["verify", "model", "--manifest", "good.json", "--workers", "1"],
    ):
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == "", argv
        lines = captured.err.splitlines()
        assert len(lines) == 1 and "w02.bin: cannot read (Input/output error)" in lines[0], lines
    assert len(failures) == 3


def test_a_keyboard_interrupt_or_memory_error_in_a_worker_is_never_a_partial_manifest(
    signed: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """KeyboardInterrupt in a worker: exit 130; MemoryError: exit 2; never a digest or ``OK``."""
    real = hashing.sha256_file
    for raised, code in ((KeyboardInterrupt(), 130), (MemoryError("worker"), 2)):

        def failing(path: str, identity: object = None, raised: BaseException = raised) -> str:
            if path.endswith("w05.bin"):
                raise raised
            return real(path, identity)  # type: ignore[arg-type]

        monkeypatch.setattr(hashing, "sha256_file", failing)
        for argv in (
            ["verify", "evil", "--manifest", "evil.json", "--workers", "3"],
            ["hash", "model", "--workers", "5"],
        ):
            assert main(argv) == code, argv
            captured = capsys.readouterr()
            assert captured.out == "" and len(captured.err.splitlines()) == 1, captured


SCRIPT = """\
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.argv = ['mlsecops', *{argv!r}]
{setup}
from mlsecops_provider.core.cli import run
run()
"""


def _run(
    argv: list[str], cwd: Path, setup: str = "", **popen: Any
) -> subprocess.CompletedProcess[str]:
    """``argv`` through the console script ``run()`` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.format(argv=argv, setup=setup)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **popen,
    )


def test_sigint_while_workers_hash_exits_130_never_0(signed: Path) -> None:
    """SIGINT while the main thread waits on its workers: exit 130, one line, no digest/``OK``."""
    for argv in (
        ["hash", "model", "--workers", "4"],
        ["verify", "model", "--manifest", "good.json", "--workers", "4"],
    ):
        marker = signed / "started"
        marker.unlink(missing_ok=True)
        setup = (
            "import time\n"
            "import mlsecops_provider.core.hashing as hashing\n"
            "real = hashing.sha256_file\n"
            "def slow(path, identity=None):\n"
            f"    open({str(marker)!r}, 'w').close()\n"
            "    time.sleep(30)\n"
            "    return real(path, identity)\n"
            "hashing.sha256_file = slow\n"
        )
        script = SCRIPT.format(argv=argv, setup=setup)
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=signed,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(0.2)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (argv, out, err)
        assert out == "" and err.splitlines() == [f"mlsecops {argv[0]}: interrupted"], (out, err)
        assert time.monotonic() - started < 20  # it stopped at once, not after the workers


def test_a_worker_that_cannot_start_fails_with_one_line_and_exit_2(signed: Path) -> None:
    """The 3rd thread refused, or no room for thread stacks: exit 2, one line, no digest."""
    refused = (
        "import _thread\n"
        "real, count = _thread.start_new_thread, []\n"
        "def start(function, args):\n"
        "    count.append(1)\n"
        "    if len(count) == 3:\n"
        '        raise RuntimeError("can\'t start new thread")\n'
        "    return real(function, args)\n"
        "_thread.start_new_thread = start\n"
    )
    exhausted = (
        "import _thread, resource\n"
        "import json, urllib.parse\n"
        "import mlsecops_provider.core.cli.hash_cmd, mlsecops_provider.core.storage\n"
        "_thread.stack_size(16 << 20)\n"
        "status = open('/proc/self/status').read().split('VmSize:')[1].split()[0]\n"
        "limit = int(status) * 1024 + (40 << 20)\n"
        "resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))\n"
    )
    cases = [(refused, ["hash", "model", "--workers", "8"])]
    cases.append((refused, ["verify", "model", "--manifest", "good.json", "--workers", "8"]))
    if os.path.exists("/proc/self/status"):
        cases.append((exhausted, ["hash", "model", "--workers", "40"]))
        cases.append((exhausted, ["verify", "model", "--manifest", "good.json", "--workers", "40"]))
    for setup, argv in cases:
        done = _run(argv, signed, setup)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        assert done.stdout == "", argv
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"mlsecops {argv[0]}: error: "), lines


def test_error_cases_through_the_console_script_are_one_line_and_exit_2(signed: Path) -> None:
    """``--workers`` refused, missing or bad manifests, special files, a read failing midway."""
    (signed / "bad.json").write_text("{")
    data = json.loads((signed / "good.json").read_text())
    (signed / "upper.json").write_text(
        json.dumps({**data, "root_digest": data["root_digest"].upper()})
    )
    digits = data["root_digest"][:-1] + "\u0663"
    (signed / "arabic.json").write_text(json.dumps({**data, "root_digest": digits}))
    (signed / "ignore.json").write_text(json.dumps({**data, "ignore": [*data["ignore"], "sub"]}))
    fifo_dir = signed / "fifo"
    fifo_dir.mkdir()
    (fifo_dir / "a").write_bytes(b"a")
    os.mkfifo(fifo_dir / "pipe")
    broken = signed / "broken"
    broken.mkdir()
    (broken / "link").symlink_to(signed / "nowhere")
    escaping = signed / "escaping"
    escaping.mkdir()
    (escaping / "link").symlink_to(signed / "good.json")
    (signed / "model" / "big.bin").write_bytes(b"b" * (2 * (1 << 20) + 1))
    midway = (
        "import os, mmap\n"
        "import mlsecops_provider.core.hashing as hashing\n"
        "real_open, real_readv, reads = hashing._open, os.readv, {}\n"
        "def opening(source):\n"
        "    fd = real_open(source)\n"
        "    if source.endswith('big.bin'):\n"
        "        reads[fd] = 0\n"
        "    return fd\n"
        "def readv(fd, buffers):\n"
        "    if fd in reads:\n"
        "        reads[fd] += 1\n"
        "        if reads[fd] == 2:\n"
        "            raise OSError(5, 'Input/output error')\n"
        "    return real_readv(fd, buffers)\n"
        "def no_mmap(*args, **kwargs):\n"
        "    raise OSError('no mmap')\n"
        "hashing._open, os.readv, mmap.mmap = opening, readv, no_mmap\n"
    )
    verify = ["verify", "model", "--manifest"]
    cases: list[tuple[list[str], str, str]] = [
        (["hash", "model", "--workers", "0"], "", "must be at least 1"),
        (["hash", "model", "--workers=0"], "", "must be at least 1"),
        (["hash", "model", "--workers", "-1"], "", "must be at least 1"),
        (["hash", "model", "--workers", "two"], "", "not a valid int"),
        (["hash", "model", "--workers", "9" * 5000], "", "not a valid int"),
        ([*verify, "good.json", "--workers", "0"], "", "must be at least 1"),
        ([*verify, "absent.json"], "", "no such file"),
        (["verify", "model"], "", "--manifest"),
        (["hash", "absent"], "", "no such file"),
        (["verify", "absent", "--manifest", "good.json"], "", "no such file"),
        ([*verify, "bad.json"], "", "not valid JSON"),
        ([*verify, "upper.json"], "", "64 lowercase hex"),
        ([*verify, "arabic.json"], "", "64 lowercase hex"),
        ([*verify, "ignore.json"], "", "differs from the fixed list"),
        (["hash", "fifo", "--workers", "2"], "", "special file"),
        (["hash", "broken"], "", "symlink"),
        (["hash", "escaping"], "", "symlink"),
        (["hash", "model", "--workers", "3"], midway, "big.bin: cannot read"),
        ([*verify, "good.json", "--workers", "3"], midway, "big.bin: cannot read"),
    ]
    for argv, setup, message in cases:
        done = _run(argv, signed, setup)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        assert done.stdout == "", argv
        lines = done.stderr.splitlines()
        assert len(lines) == 1, (argv, lines)
        assert lines[0].startswith(f"mlsecops {argv[0]}: error: ") and message in lines[0], lines
        assert "Traceback" not in done.stderr


# ---------------------------------------------------------------------------- 4. hex digests

_HEX64 = re.compile(r"[0-9a-f]{64}")  # what check_digest replaced


def _accepted(value: object) -> bool:
    try:
        check_digest(value, "x")
    except DataError:
        return False
    return True


def test_check_digest_accepts_exactly_what_the_regex_accepted() -> None:
    """Every Unicode digit or a-f look-alike, wrong lengths, controls, non-str: same verdict."""
    good = "0123456789abcdef" * 4
    lookalikes = [
        chr(c)
        for c in range(0x110000)
        if unicodedata.category(chr(c)) in ("Nd", "No", "Nl")
        or chr(c).casefold() in set("abcdef")
        or unicodedata.normalize("NFKC", chr(c)) in set("0123456789abcdefABCDEF")
    ]
    assert len(lookalikes) > 700
    candidates: list[object] = [good, good.upper(), good[:-1], good + "0", good * 2, ""]
    candidates += [good + "\n", good[:-1] + "\n", "\n" + good[1:], good[:-1] + "\x00"]
    candidates += [good[:-1] + " ", " " + good[1:], good[:-1] + "\udcff", good[:-1] + "g"]
    candidates += [good[:-2] + "\u0301", good[:-1] + "\u0660" + "0"]
    candidates += [None, 0, 1.5, good.encode(), bytearray(good.encode()), list(good), tuple(good)]
    candidates += [{c: 1 for c in good}, frozenset(good), memoryview(good.encode())]
    candidates += [good[:-1] + c for c in lookalikes] + [c * 64 for c in lookalikes]
    rng = random.Random(64)
    candidates += [
        "".join(rng.choice("0123456789abcdefABCDEF") for _ in range(64)) for _ in range(500)
    ]
    accepted = 0
    for value in candidates:
        expected = isinstance(value, str) and _HEX64.fullmatch(value) is not None
        assert _accepted(value) == expected, repr(value)
        accepted += expected
    assert accepted >= 3
    # through JSON, an escaped non-ASCII digit is refused as well
    text = json.dumps({"schema": "mlsecops.manifest/v1", "kind": "file", "name": "m"})
    data = json.loads(text)
    data.update(algorithm="sha256", ignore=[], files={"m": good[:-1] + "\u0669"})
    data["root_digest"] = good[:-1] + "\u0669"
    with pytest.raises(DataError, match="64 lowercase hex"):
        Manifest.from_json(json.dumps(data, ensure_ascii=True))


class _LyingStr(str):
    """A ``str`` whose iteration shows 64 zeros whatever it holds."""

    def __iter__(self) -> Any:
        return iter("0" * 64)


def test_check_digest_refuses_a_str_subclass_whose_iteration_lies() -> None:
    """A ``str`` subclass holding non-hex is refused whatever its ``__iter__`` yields."""
    lying = _LyingStr("z" * 64)
    assert _HEX64.fullmatch(lying) is None  # the regex refused it
    with pytest.raises(DataError):
        Manifest(kind="file", name="m", files={"m": lying})
