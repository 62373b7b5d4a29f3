"""Benchmark of ``mlsecops hash`` as a whole process against SHA-256 limits (not a test).

Run: ``.venv/bin/python bench/bench_hashing.py [--size-mib 1024] [--count 100] [--repeat 5]``
(about a minute on an idle two-core machine; the defaults are the figures the README names).

In one run, side by side, best of ``--repeat`` with the cases interleaved (so a change of
load hits all of them):

* limit, one core: hashlib SHA-256 over random bytes already in memory (random, not zeros,
  which would overstate it), as many bytes as the big file;
* limit, two cores: the same on two threads at once, each over its own random buffer
  (hashlib releases the GIL), as many bytes as the small files together;
* (a) ``mlsecops hash BIG`` (process start, imports, reading, hashing, output) on one
  ``--size-mib`` MiB file of random bytes, page cache warm;
* (b) ``mlsecops hash DIR`` on ``--count`` files of 10 MiB;
* both with ``mlsecops`` as a user installs it (this checkout built and installed into a
  fresh venv, console script as pip writes it) and, beside it, the checkout's editable
  install (``.venv``), whose import hook costs every interpreter start ~10 ms more;
* for the analysis: ``hash_path`` in this process on (a) and (b), the process start alone
  (``mlsecops hash`` on a 1-byte file) and the interpreter's own start (``python -c pass``,
  the floor of any Python command; an editable install's import hook is part of it).

The commands run as an installed package runs: with bytecode caches (pip compiles them at
install time; Python writes them on first import). ``PYTHONDONTWRITEBYTECODE``, which some
sandboxes set, would make every run compile the package again: it is dropped for the runs
and the caches go to a directory of this run (``PYTHONPYCACHEPREFIX``), not into the source
tree; the start-up without caches is printed too.

Targets (installed): (a) >= 0.85x the one-core limit, (b) >= 0.85x the two-core limit.
The machine may be shared: the load average before and after is printed; figures under load
are lower bounds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mlsecops_provider.core.hashing import hash_path

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20
SMALL_FILE = 10 * MIB
CHUNK = 4 * MIB
BUFFER = 16 * MIB


def write_random(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        left = size
        while left > 0:
            handle.write(os.urandom(min(left, CHUNK)))
            left -= CHUNK


def warm(paths: list[Path]) -> None:
    buf = bytearray(CHUNK)
    for path in paths:
        with path.open("rb", buffering=0) as handle:
            while handle.readinto(buf):
                pass


def memory_hash(total: int, threads: int) -> Callable[[], None]:
    """SHA-256 of exactly ``total`` random bytes in memory, split over ``threads`` threads
    (each over its own buffer, as many times as its share needs, the last time in part)."""
    buffers = [os.urandom(BUFFER) for _ in range(threads)]
    shares = [total // threads + (i < total % threads) for i in range(threads)]

    def one(buf: bytes, share: int) -> None:
        digest, view = hashlib.sha256(), memoryview(buf)
        while share > 0:
            digest.update(view[: min(share, BUFFER)])
            share -= BUFFER

    def run() -> None:
        workers = [threading.Thread(target=one, args=a) for a in zip(buffers, shares, strict=True)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    return run


def installed_env(workdir: Path) -> dict[str, str]:
    """The environment with bytecode caches written and read (in ``workdir``)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def uncached_env() -> dict[str, str]:
    """No caches written: the package is compiled again by every run (sources without any)."""
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


def mlsecops_hash(
    path: Path, env: dict[str, str], command: list[str] | None = None
) -> Callable[[], None]:
    exe = Path(sys.executable).with_name("mlsecops")
    module, attr = console_script(Path(sys.prefix))
    script = f"from {module} import {attr}; {attr}()"
    command = command or ([str(exe)] if exe.exists() else [sys.executable, "-c", script])

    def run() -> None:
        subprocess.run(
            [*command, "hash", str(path)], check=True, stdout=subprocess.DEVNULL, env=env
        )

    run()  # warm-up: the caches are written now
    return run


def installed_command(workdir: Path) -> list[str]:
    """``mlsecops`` as a user installs it: this checkout built and installed (no
    dependencies: the hash path needs none) into a fresh venv, with a console script like
    pip's. The checkout's own venv runs an editable install, whose import hook every
    interpreter start pays."""
    venv = workdir / "installed-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(ROOT)],
        check=True, stdout=subprocess.DEVNULL, cwd=workdir,
    )  # fmt: skip
    module, attr = console_script(venv)
    script = venv / "bin" / "mlsecops"
    script.write_text(
        f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom {module} import {attr}\n"
        f"if __name__ == '__main__':\n    sys.exit({attr}())\n"
    )
    script.chmod(0o755)
    return [str(script)]


def console_script(prefix: Path) -> tuple[str, str]:
    """``(module, function)`` of the ``mlsecops`` console script installed under ``prefix``
    (its dist-info's entry points, as pip reads them)."""
    import configparser

    for found in prefix.glob("lib/python3*/site-packages/*.dist-info/entry_points.txt"):
        points = configparser.ConfigParser()
        points.read(found)
        if points.has_option("console_scripts", "mlsecops"):
            module, _, attr = points.get("console_scripts", "mlsecops").partition(":")
            return module.strip(), attr.strip()
    raise SystemExit(f"no mlsecops console script installed under {prefix}")


def python_start(env: dict[str, str], python: str = sys.executable) -> Callable[[], None]:
    def run() -> None:
        subprocess.run([python, "-c", "pass"], check=True, env=env)

    run()
    return run


def measure(cases: dict[str, tuple[int, Callable[[], None]]], repeat: int) -> dict[str, float]:
    best = dict.fromkeys(cases, 0.0)
    for _ in range(repeat):
        for name, (size, fn) in cases.items():
            started = time.perf_counter()
            fn()
            best[name] = max(best[name], size / (time.perf_counter() - started) / 1e9)
    return best


def run(size_mib: int, count: int, repeat: int, workdir: Path) -> None:
    big, many = workdir / "big.bin", workdir / "many"
    many.mkdir()
    big_size, many_size = size_mib * MIB, count * SMALL_FILE
    write_random(big, big_size)
    for i in range(count):
        write_random(many / f"part-{i:04d}.bin", SMALL_FILE)
    warm([big, *many.iterdir()])
    tiny = workdir / "tiny.bin"
    tiny.write_bytes(b"x")
    env = installed_env(workdir)
    installed = installed_command(workdir)
    load_before = os.getloadavg()
    best = measure(
        {
            "limit1": (big_size, memory_hash(big_size, 1)),
            "a": (big_size, mlsecops_hash(big, env, installed)),
            "a_dev": (big_size, mlsecops_hash(big, env)),
            "a_lib": (big_size, lambda: hash_path(big)),
            "limit2": (many_size, memory_hash(many_size, 2)),
            "b": (many_size, mlsecops_hash(many, env, installed)),
            "b_dev": (many_size, mlsecops_hash(many, env)),
            "b_lib": (many_size, lambda: hash_path(many)),
            "start": (1, mlsecops_hash(tiny, env, installed)),
            "start_dev": (1, mlsecops_hash(tiny, env)),
            "python": (1, python_start(env, str(Path(installed[0]).with_name("python")))),
            "python_dev": (1, python_start(env)),
            "uncached": (1, mlsecops_hash(tiny, uncached_env())),
        },
        repeat,
    )
    ratio_a, ratio_b = best["a"] / best["limit1"], best["b"] / best["limit2"]
    print(f"cores: {os.cpu_count()}  best of {repeat}  page cache warm  GB = 1e9 bytes")
    print(f"{'case (mlsecops installed in a fresh venv)':<44} {'mlsecops hash':>14} "
          f"{'limit':>10} {'ratio':>7}")  # fmt: skip
    print(
        f"{f'(a) one {size_mib} MiB file vs 1-core limit':<44} "
        f"{best['a']:9.3f} GB/s {best['limit1']:6.3f} GB/s {ratio_a:6.2f}x"
    )
    print(
        f"{f'(b) {count} x 10 MiB vs 2-core limit':<44} "
        f"{best['b']:9.3f} GB/s {best['limit2']:6.3f} GB/s {ratio_b:6.2f}x"
    )
    dev_a, dev_b = best["a_dev"] / best["limit1"], best["b_dev"] / best["limit2"]
    print(f"the checkout's editable install (.venv): (a) {dev_a:.2f}x, (b) {dev_b:.2f}x")
    lib_a, lib_b = best["a_lib"] / best["limit1"], best["b_lib"] / best["limit2"]
    print(f"in-process hash_path (no process start): (a) {lib_a:.2f}x, (b) {lib_b:.2f}x")
    ms = {k: 1e-6 / best[k] for k in ("start", "python", "start_dev", "python_dev")}
    print(f"process start + imports + output (1-byte file): {ms['start']:.0f} ms installed, "
          f"{ms['start_dev']:.0f} ms editable")  # fmt: skip
    print(f"of which the interpreter's own start (python -c pass): {ms['python']:.0f} ms "
          f"installed, {ms['python_dev']:.0f} ms editable (its import hook)")  # fmt: skip
    uncached = 1e-9 / best["uncached"]
    print(f"editable, no bytecode caches written (PYTHONDONTWRITEBYTECODE=1): "
          f"{uncached * 1e3:.0f} ms")  # fmt: skip
    print(f"target (a) >= 0.85x: {'met' if ratio_a >= 0.85 else 'MISSED'} ({ratio_a:.3f}x)")
    print(f"target (b) >= 0.85x: {'met' if ratio_b >= 0.85 else 'MISSED'} ({ratio_b:.3f}x)")
    print(f"load average (1/5/15 min): before {load_before}, after {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="big file size (MiB)")
    parser.add_argument("--count", type=int, default=100, help="number of 10 MiB files")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (best kept)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mlsecops-bench-", dir="/tmp"))
    try:
        run(args.size_mib, args.count, max(1, args.repeat), workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
