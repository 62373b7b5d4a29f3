"""Benchmark: data validation as one task vs as N shard tasks plus a merge (a script, not a test).

Run: ``.venv/bin/python bench/bench_sharded_validation.py [--rows 600000] [--shard-rows 200000]``.

Writes the demo generator's batch (``--rows``) and a 20,000-row reference as Parquet into a
temporary folder, splits the batch into shards of ``--shard-rows`` and runs, each in its own
subprocess so peak memory is separate: the single-task gate over the whole table; one map task
per shard (:func:`validate_shard`, the partial written as JSON); the merge. Prints wall time,
rows/s and peak RSS of each, and the partials' size. The shipped demo suite and all screens run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUITE = str(ROOT / "include" / "suites" / "credit_risk.json")


def _config() -> Any:
    from mlsecops_provider.core.validation.gate import ValidationConfig
    from mlsecops_provider.core.validation.poisoning import PoisoningConfig

    return ValidationConfig(render_html=False, screens=PoisoningConfig(label_column="default"))


def _child(args: argparse.Namespace) -> None:
    from mlsecops_provider.core.data.datasets import read_table
    from mlsecops_provider.core.shards.split import ShardRef
    from mlsecops_provider.core.validation import gate
    from mlsecops_provider.core.validation.sharded import partial_bytes, validate_shard
    from mlsecops_provider.core.validation.sharded_merge import merge_partials

    folder = Path(args.folder)
    suite = gate.load_suite(SUITE)
    reference, _ = read_table((folder / "ref.parquet").as_uri())
    start = time.perf_counter()
    if args.child == "single":
        frame, _ = read_table((folder / "batch.parquet").as_uri())
        result, _ = gate.validate_dataset(frame, suite, reference, _config())
        verdict = result.verdict.value
    elif args.child == "merge":
        parts = [json.loads(p.read_bytes()) for p in sorted(folder.glob("partial-*.json"))]
        result, _ = merge_partials(parts, suite, _config())
        verdict = result.verdict.value
    else:
        shard = ShardRef.from_dict(json.loads((folder / f"shard-{args.child}.json").read_text()))
        frame, _ = read_table(shard.uri, shard.sha256)
        data = partial_bytes(validate_shard(frame, shard, suite, reference, _config()))
        (folder / f"partial-{shard.index:05d}.json").write_bytes(data)
        verdict = f"{len(data) / 2**20:.1f} MiB partial"
    seconds = time.perf_counter() - start
    peak = _peak_gib()
    print(json.dumps({"seconds": seconds, "peak_gib": peak, "verdict": verdict}))


def _peak_gib() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _run(folder: Path, child: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", child, "--folder", str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=600_000)
    parser.add_argument("--shard-rows", type=int, default=200_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    from mlsecops_provider.core.data.datasets import write_table
    from mlsecops_provider.core.shards.split import split_dataset
    from mlsecops_provider.include.generator import generate

    with tempfile.TemporaryDirectory(prefix="bench-sharded-validation-") as tmp:
        folder = Path(tmp)
        data = write_table(generate(args.rows, seed=11), (folder / "batch.parquet").as_uri())
        write_table(generate(20_000, seed=7), (folder / "ref.parquet").as_uri())
        shards = split_dataset(data.uri, data.sha256, (folder / "shards").as_uri(),
                               shard_rows=args.shard_rows)  # fmt: skip
        for shard in shards:
            (folder / f"shard-{shard.index}.json").write_text(json.dumps(shard.to_dict()))
        single = _run(folder, "single")
        print(f"single task: {args.rows:,} rows in {single['seconds']:.1f} s "
              f"({args.rows / single['seconds']:,.0f} rows/s), peak {single['peak_gib']:.2f} GiB, "
              f"{single['verdict']}")  # fmt: skip
        for shard in shards:
            one = _run(folder, str(shard.index))
            print(f"{shard.label}: {shard.rows:,} rows in {one['seconds']:.1f} s "
                  f"({shard.rows / one['seconds']:,.0f} rows/s), peak {one['peak_gib']:.2f} GiB, "
                  f"{one['verdict']}")  # fmt: skip
        merged = _run(folder, "merge")
        print(f"merge of {len(shards)} partials: {merged['seconds']:.1f} s, "
              f"peak {merged['peak_gib']:.2f} GiB, {merged['verdict']} "
              f"(single task: {single['verdict']})")  # fmt: skip


if __name__ == "__main__":
    main()
