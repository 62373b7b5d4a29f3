"""Benchmark of core.hashing against the one-core SHA-256 limit (a script, not a test).

Run: ``.venv/bin/python bench/bench_hashing.py [--size-gib 2] [--repeat 3]``.

Writes into a temporary folder under /tmp (deleted afterwards): (a) one big file of
``--size-gib`` GiB and (b) 10 MiB files of the same total (200 files at 2 GiB). The page
cache is warmed first; each figure is the best of ``--repeat`` runs. Prints GB/s (1e9 B/s)
for in-memory hashlib (one core), ``sha256sum`` on the big file, our hasher on (a) and (b),
the ratios against the in-memory limit (targets: (a) >= 0.85x, (b) >= 1.6x on 2 cores),
the load average and peak RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mlsecops_provider.core.hashing import hash_path

MIB = 1 << 20
SMALL_FILE = 10 * MIB
WRITE_CHUNK = 4 * MIB


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (all threads of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def write_file(path: Path, size: int, seed: bytes) -> None:
    block = bytearray(os.urandom(WRITE_CHUNK))
    with path.open("wb") as handle:
        left = size
        while left > 0:
            block[: len(seed)] = seed  # distinct content per file and per chunk
            handle.write(memoryview(block)[: min(left, WRITE_CHUNK)])
            left -= WRITE_CHUNK
            seed = hashlib.sha256(seed).digest()


def warm(paths: list[Path]) -> None:
    buf = bytearray(WRITE_CHUNK)
    for path in paths:
        with path.open("rb", buffering=0) as handle:
            while handle.readinto(buf):
                pass


def memory_limit(total: int) -> Callable[[], None]:
    """hashlib SHA-256 over a reused 16 MiB buffer, ``total`` bytes, one core."""
    buf = os.urandom(16 * MIB)
    rounds = max(1, total // len(buf))

    def run() -> None:
        digest = hashlib.sha256()
        for _ in range(rounds):
            digest.update(buf)

    return run


def sha256sum(path: Path) -> str:
    done = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True)
    return done.stdout.split()[0]


def measure(big: Path, small_dir: Path, big_size: int, repeat: int) -> dict[str, float]:
    """Best GB/s per case; the cases are interleaved so that load changes hit all of them."""
    limit = memory_limit(big_size)
    many_bytes = sum(p.stat().st_size for p in small_dir.iterdir())
    cases: dict[str, tuple[int, Callable[[], object]]] = {
        "limit": (big_size, limit),
        "sha256sum": (big_size, lambda: sha256sum(big)),
        "a": (big_size, lambda: hash_path(big)),
        "b": (many_bytes, lambda: hash_path(small_dir)),
        "b1": (many_bytes, lambda: hash_path(small_dir, workers=1)),
    }
    best = dict.fromkeys(cases, 0.0)
    for _ in range(repeat):
        for name, (size, fn) in cases.items():
            wall, cpu = timed(fn)
            if size / wall / 1e9 > best[name]:
                best[name] = size / wall / 1e9
                best[f"{name}_cpu"] = cpu / wall
    return best


def run(size_gib: float, repeat: int, workdir: Path) -> None:
    big_size = int(size_gib * (1 << 30))
    count = max(2, round(200 * size_gib / 2))
    big, small_dir = workdir / "big.bin", workdir / "many"
    small_dir.mkdir()
    write_file(big, big_size, b"big")
    for i in range(count):
        write_file(small_dir / f"part-{i:04d}.bin", SMALL_FILE, f"file-{i}".encode())
    warm([big, *small_dir.iterdir()])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_before = os.getloadavg()
    same = hash_path(big).root_digest == sha256sum(big)
    best = measure(big, small_dir, big_size, repeat)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    limit = best["limit"]
    labels = {
        "limit": "hashlib in memory, 1 core (limit)",
        "sha256sum": f"sha256sum, one {size_gib:g} GiB file",
        "a": f"ours (a), one {size_gib:g} GiB file",
        "b": f"ours (b), {count} x 10 MiB, all cores",
        "b1": f"ours (b), {count} x 10 MiB, 1 worker",
    }
    print(f"cores: {os.cpu_count()}  best of {repeat}  page cache warm")
    for key, label in labels.items():
        rate, cpu = best[key], best.get(f"{key}_cpu", 0.0)
        print(f"{label:<38} {rate:6.3f} GB/s  {rate / limit:5.2f}x limit  cpu {cpu:4.2f}")
    ratio_a, ratio_b = best["a"] / limit, best["b"] / limit
    print(f"target (a) >= 0.85x: {'met' if ratio_a >= 0.85 else 'MISSED'} ({ratio_a:.2f}x)")
    print(f"target (b) >= 1.60x: {'met' if ratio_b >= 1.6 else 'MISSED'} ({ratio_b:.2f}x)")
    print(f"digest of (a) equals sha256sum's: {same}")
    print(f"peak RSS: {rss_before:.0f} MiB before hashing, {rss_peak:.0f} MiB after all runs")
    print(f"load average (1/5/15 min): before {load_before}, after {os.getloadavg()}")
    print("cpu = process CPU seconds per wall second (sha256sum runs in a child: ~0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=2.0, help="big file size (GiB)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mlsecops-bench-", dir="/tmp"))
    try:
        run(args.size_gib, max(1, args.repeat), workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
