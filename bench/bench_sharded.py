"""Benchmark of the sharded gates: one shard vs N shards on two workers (a script, not a test).

Run: ``.venv/bin/python bench/bench_sharded.py [--rows 1000000,4000000] [--shard-rows 500000]
[--pii-rows 20000,80000] [--pii-shard-rows 10000] [--workers 2]``.

For each size, a generated table (bench_validation's 20 columns for validation; bench_pii's
table with free text for PII) is written as Parquet in pieces (memory bounded), split with
:func:`~mlsecops_provider.core.shards.split.split_dataset`, and each shard task runs in a
fresh worker process (a pool of ``--workers`` processes, one task per process, as a Celery
worker runs a task instance), so each task's peak RSS is its own:

* validation: the split task, then ``read_table`` (digest) + :func:`validate_shard` per shard
  (its partial written to a file, as the operator stores it), then :func:`merge_partials` in
  a task of its own; "1 shard" is the whole table in one task (the single-task gate);
* PII: the split task, the plan, then the shard tasks, then the merge (concatenation, digest);
  the one-task run is skipped above ``--pii-single-max`` rows (it takes hours at 10M).

Peak RSS is each process's own VmHWM (see :func:`_rss_mib`), for shard, split and merge tasks.

Printed per size: rows/s per shard task (mean and spread), overall rows/s (wall, split and
merge included), the slowest task, peak RSS per task vs the single task's, and the projection
to 100M rows on K workers. Linear cost means rows/s per shard stays within 15% across sizes.
The machine may be shared: the load average before and after is printed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import bench_pii as bp  # noqa: E402
import bench_validation as bv  # noqa: E402

from mlsecops_provider.core.shards.split import ShardRef  # noqa: E402

PIECE = 250_000  # rows generated and written at a time
# fresh interpreters: a forked child would inherit (and report) the parent's peak RSS
SPAWN = multiprocessing.get_context("spawn")
PII_KEY = b"bench-sharded-key-0123456789abcdef"


def _rss_mib() -> float:
    """This process's own peak RSS (VmHWM of its address space). Not ``ru_maxrss``: a spawned
    child's ``ru_maxrss`` starts at its parent's RSS at fork time (Linux keeps the fork's
    high-water mark across ``exec``), so it would grow with whatever the parent holds."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def write_table(path: Path, rows: int, seed: int, make: Any) -> list[str]:
    """``rows`` generated rows as one Parquet file, written piece by piece."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    columns: list[str] = []
    for start in range(0, rows, PIECE):
        frame = make(min(PIECE, rows - start), seed + start)
        if "customer_id" in frame:  # ids and e-mails unique over the whole table, not per piece
            ids = (start + frame.index).astype(str).str.zfill(10)
            frame["customer_id"] = "C" + ids
            frame["email"] = "c" + ids + "." + frame["email"]
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        columns = list(frame.columns)
    assert writer is not None
    writer.close()
    return columns


def validation_config() -> Any:
    from mlsecops_provider.core.validation.gate import ValidationConfig
    from mlsecops_provider.core.validation.poisoning import PoisoningConfig

    return ValidationConfig(render_html=False, screens=PoisoningConfig(**bv.SCREENS))


def validate_task(
    shard: dict[str, Any], suite: dict[str, Any], reference: str, out: str
) -> dict[str, Any]:
    """One mapped validation task in a fresh process: read, verify, validate one shard, write
    its partial to ``out`` (as the operator stores it; the bench process reads it later)."""
    from mlsecops_provider.core.data.datasets import read_table
    from mlsecops_provider.core.validation.sharded import partial_bytes, validate_shard
    from mlsecops_provider.core.validation.suite import load_suite, run_suite

    setup = time.perf_counter()
    checked = load_suite(suite)  # GX import, suite build and GX's first run: once per task
    frame, _ = read_table(shard["uri"], shard["sha256"])
    run_suite(frame.head(100), checked)
    started = time.perf_counter()
    setup = started - setup
    frame, _ = read_table(shard["uri"], shard["sha256"])  # the timed part reads again
    ref_frame, ref = read_table(reference)
    partial = validate_shard(frame, shard, checked, ref_frame, validation_config(),
                             reference_sha256=ref.sha256, run={"run_id": "bench"})  # fmt: skip
    Path(out).write_bytes(partial_bytes(partial))
    seconds = time.perf_counter() - started
    return {"rows": shard["rows"], "seconds": seconds, "setup": setup, "rss_mib": _rss_mib(),
            "partial": out}  # fmt: skip


def split_task(uri: str, prefix: str, size: int, align: int = 1) -> dict[str, Any]:
    """The split task in a fresh process: the shards and the task's own peak RSS."""
    from mlsecops_provider.core.shards.split import split_dataset

    shards = split_dataset(uri, None, prefix, shard_rows=size, align=align)
    return {"shards": [s.to_dict() for s in shards], "rss_mib": _rss_mib()}


def validation_merge_task(paths: list[str], suite: dict[str, Any]) -> dict[str, Any]:
    """The merge task in a fresh process: read every partial, merge, decide."""
    from mlsecops_provider.core.validation.sharded_merge import merge_partials

    started = time.perf_counter()
    reference = json.loads(Path(paths[0]).read_bytes())["reference_sha256"]
    partials = (json.loads(Path(p).read_bytes()) for p in paths)  # one at a time, as the operator
    result, _ = merge_partials(partials, suite, validation_config(), run={"run_id": "bench"},
                               reference_sha256=reference)  # fmt: skip
    return {"verdict": result.verdict.value, "message": result.message,
            "seconds": time.perf_counter() - started, "rss_mib": _rss_mib()}  # fmt: skip


def fresh(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a fresh interpreter (one task, one process)."""
    with ProcessPoolExecutor(1, SPAWN) as pool:
        return pool.submit(fn, *args).result()


def run_validation(tmp: Path, rows: int, shard_rows: int, workers: int) -> dict[str, Any]:
    data, ref = tmp / f"batch-{rows}.parquet", tmp / "reference.parquet"
    columns = write_table(data, rows, 11, bv.make_frame)
    if not ref.exists():
        write_table(ref, 200_000, 7, bv.make_frame)
    suite = bv.bench_suite(columns)
    out: dict[str, Any] = {}
    for label, size in (("1 shard", rows), (f"{-(-rows // shard_rows)} shards", shard_rows)):
        work = tmp / f"validation-{rows}-{size}"
        work.mkdir()
        started = time.perf_counter()
        split = fresh(split_task, data.as_uri(), (work / "shards").as_uri(), size)
        split_seconds = time.perf_counter() - started
        os.sync()  # the shards' write-back is the split's cost, not the shard tasks'
        with ProcessPoolExecutor(workers, SPAWN, max_tasks_per_child=1) as pool:
            tasks = [pool.submit(validate_task, s, suite, ref.as_uri(),
                                 str(work / f"partial-{s['index']:05d}.json"))
                     for s in split["shards"]]  # fmt: skip
            done = [t.result() for t in tasks]
        merge_started = time.perf_counter()
        merged = fresh(validation_merge_task, [d["partial"] for d in done], suite)
        merge = time.perf_counter() - merge_started
        out[label] = summarise(rows, done, time.perf_counter() - started, split_seconds, merge)
        out[label].update(verdict=merged["verdict"], split_rss_mib=split["rss_mib"],
                          merge_rss_mib=merged["rss_mib"])  # fmt: skip
        print(f"validation {rows:,} rows, {label}: {merged['verdict']} ({merged['message']})")
    return out


def pii_config(chunk_rows: int) -> Any:
    from dataclasses import replace

    from mlsecops_provider.core.pii.gate import PIIConfig
    from mlsecops_provider.core.policy import load_policy

    config = PIIConfig.from_policy(load_policy(None))
    return replace(config, chunk_rows=chunk_rows, seed=5, exclude_columns=())


def _deidentifier(chunk_rows: int) -> Any:
    from mlsecops_provider.core.pii.gate import Deidentifier

    config = pii_config(chunk_rows)
    return Deidentifier.prepare(config, PII_KEY if config.needs_key else None)


def pii_task(shard: dict[str, Any], plan_uri: str, plan_sha: str, out: str, chunk_rows: int
             ) -> dict[str, Any]:  # fmt: skip
    """One mapped de-identification task in a fresh process (engine load not timed)."""
    from mlsecops_provider.core.pii.shard_plan import read_plan
    from mlsecops_provider.core.pii.sharded import deidentify_shard

    setup = time.perf_counter()
    deidentifier = _deidentifier(chunk_rows)
    started = time.perf_counter()
    setup = started - setup
    plan = read_plan(plan_uri, plan_sha)
    name = f"shard-{shard['index']:05d}.{shard['format']}"
    done = deidentify_shard(deidentifier, plan, plan_sha, shard, PII_KEY, f"{out}/out/{name}",
                            f"{out}/partials/{name}.json", plan_uri=plan_uri)  # fmt: skip
    seconds = time.perf_counter() - started
    return {"rows": shard["rows"], "seconds": seconds, "setup": setup, "rss_mib": _rss_mib(),
            "part": done.to_dict()}  # fmt: skip


def run_pii(
    tmp: Path, rows: int, shard_rows: int, workers: int, chunk_rows: int, single_max: int
) -> dict:
    from mlsecops_provider.core.pii.shard_plan import read_plan
    from mlsecops_provider.core.pii.sharded import plan_shards
    from mlsecops_provider.core.pii.sharded_merge import merge_shards

    data = tmp / f"pii-{rows}.parquet"
    write_table(data, rows, 3, bp.demo_table)
    deidentifier = _deidentifier(chunk_rows)
    out: dict[str, Any] = {}
    layouts = [(f"{-(-rows // shard_rows)} shards", shard_rows)]
    if rows <= single_max:
        layouts.insert(0, ("1 shard", rows))
    for label, size in layouts:
        work = (tmp / f"pii-{rows}-{size}").as_uri()
        started = time.perf_counter()
        split_out = fresh(split_task, data.as_uri(), f"{work}/shards", size, chunk_rows)
        os.sync()
        shards = [ShardRef.from_dict(s) for s in split_out["shards"]]
        split = time.perf_counter() - started
        plan, digest = plan_shards(deidentifier, [s.to_dict() for s in shards], PII_KEY,
                                   f"{work}/plan.json")  # fmt: skip
        plan_seconds = time.perf_counter() - started - split
        with ProcessPoolExecutor(workers, SPAWN, max_tasks_per_child=1) as pool:
            tasks = [pool.submit(pii_task, s.to_dict(), f"{work}/plan.json", digest, work,
                                 chunk_rows) for s in shards]  # fmt: skip
            done = [t.result() for t in tasks]
        merge_started = time.perf_counter()
        merged = merge_shards(
            deidentifier.config,
            read_plan(f"{work}/plan.json", digest),
            digest,
            [d["part"] for d in done],
            PII_KEY,
            f"{work}/deidentified.parquet",
        )
        merge = time.perf_counter() - merge_started
        out[label] = summarise(rows, done, time.perf_counter() - started, split, merge)
        out[label]["verdict"] = merged.result.verdict.value
        out[label]["plan"] = plan_seconds
        out[label]["output_sha256"] = merged.output.sha256 if merged.output else None
        out[label]["split_rss_mib"] = split_out["rss_mib"]
        print(f"PII {rows:,} rows, {label}: {merged.result.verdict.value}", flush=True)
    return out


def summarise(
    rows: int, done: list[dict[str, Any]], wall: float, split: float, merge: float
) -> dict[str, Any]:
    rates = [d["rows"] / d["seconds"] for d in done]
    return {
        "tasks": len(done),
        "rows_per_s_task": statistics.fmean(rates),
        "spread": (max(rates) - min(rates)) / statistics.fmean(rates) if len(rates) > 1 else 0.0,
        "rows_per_s_overall": rows / wall,
        "wall": wall,
        "split": split,
        "merge": merge,
        "slowest_task": max(d["seconds"] for d in done),
        "peak_rss_mib": max(d["rss_mib"] for d in done),
        "setup": statistics.fmean(d["setup"] for d in done),
        "task_seconds": [round(d["seconds"], 2) for d in done],
    }


def print_table(gate: str, results: dict[int, dict[str, Any]], workers: int) -> None:
    print(f"\n{gate}: rows/s per shard task, overall (wall, split and merge included), "
          "peak RSS per task")  # fmt: skip
    print(f"{'rows':>11} {'layout':>10} {'tasks':>5} {'rows/s/task':>12} {'spread':>7} "
          f"{'overall':>10} {'wall s':>7} {'setup s':>7} {'merge s':>7} {'peak MiB':>9} "
          f"{'split MiB':>9} {'merge MiB':>9} verdict")  # fmt: skip
    for rows, layouts in results.items():
        for label, r in layouts.items():
            print(f"{rows:>11,} {label:>10} {r['tasks']:>5} {r['rows_per_s_task']:>12,.0f} "
                  f"{r['spread']:>6.0%} {r['rows_per_s_overall']:>10,.0f} {r['wall']:>7.1f} "
                  f"{r['setup']:>7.1f} "
                  f"{r['merge']:>7.2f} {r['peak_rss_mib']:>9,.0f} "
                  f"{r.get('split_rss_mib', 0):>9,.0f} {r.get('merge_rss_mib', 0):>9,.0f} "
                  f"{r.get('verdict', '')}")  # fmt: skip
    for rows, layouts in results.items():
        for label, r in layouts.items():
            if r["tasks"] > 1:
                print(f"{rows:>11,} {label}: seconds per task in order {r['task_seconds']}")
    sharded = [r for layouts in results.values() for k, r in layouts.items() if k != "1 shard"]
    if sharded:
        rates = [r["rows_per_s_task"] for r in sharded]
        drift = (max(rates) - min(rates)) / statistics.fmean(rates)
        rate = statistics.fmean(rates)
        print(
            f"rows/s per shard task across sizes: {min(rates):,.0f} .. {max(rates):,.0f} "
            f"({drift:.0%} apart; linear within 15%: {'yes' if drift <= 0.15 else 'NO'})"
        )
        for k in (workers, 8, 32):
            hours = 100e6 / rate / k / 3600
            print(f"projection: 100M rows on {k} workers ~ {hours:.2f} h of shard tasks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,4000000")
    parser.add_argument("--shard-rows", type=int, default=500_000)
    parser.add_argument("--pii-rows", default="20000,80000")
    parser.add_argument("--pii-shard-rows", type=int, default=10_000)
    parser.add_argument("--pii-chunk-rows", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--pii-single-max",
        type=int,
        default=1_000_000,
        help="skip PII's one-task run above this many rows (hours at 10M)",
    )
    args = parser.parse_args()
    before = os.getloadavg()
    print(f"cores {os.cpu_count()}, workers {args.workers}; load average before "
          + ", ".join(f"{x:.2f}" for x in before))  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-sharded-") as work:
        tmp = Path(work)
        validation = {
            rows: run_validation(tmp, rows, args.shard_rows, args.workers)
            for rows in map(int, args.rows.split(","))
            if rows
        }
        pii = {
            rows: run_pii(
                tmp,
                rows,
                args.pii_shard_rows,
                args.workers,
                args.pii_chunk_rows,
                args.pii_single_max,
            )
            for rows in map(int, args.pii_rows.split(","))
            if rows
        }
    print_table("validation", validation, args.workers)
    print_table("PII de-identification", pii, args.workers)
    for rows, layouts in pii.items():
        digests = {r["output_sha256"] for r in layouts.values()}
        if len(layouts) < 2:
            continue
        print(f"PII {rows:,} rows: output bytes of 1 shard and N shards identical: "
              f"{len(digests) == 1 and None not in digests}")  # fmt: skip
    print(json.dumps({"load_after": os.getloadavg()}))


if __name__ == "__main__":
    main()
