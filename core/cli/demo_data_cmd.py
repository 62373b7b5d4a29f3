"""``mlsecops demo-data``: write a generated demo batch (clean, drifted or poisoned)."""

from __future__ import annotations

import argparse
from typing import Any

from mlsecops_provider.core.cli import contract
from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.storage import normalise_uri


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo-data",
        help="write a deterministic demo dataset (credit-risk style, with PII)",
        description="Write a generated credit-risk batch (label column 'default', PII "
        "columns) to OUT. Exit 0 written, 2 usage error or OUT cannot be written.",
    )
    parser.add_argument("out", metavar="OUT", help="output path or URI (.parquet or .csv)")
    parser.add_argument("--rows", type=contract.positive_int, default=2000, metavar="N")
    parser.add_argument("--seed", type=int, default=7, metavar="S")
    parser.add_argument("--drift", action="store_true", help="shift feature distributions")
    parser.add_argument(
        "--label-flip-rate", type=contract.rate, default=0.0, metavar="R", help="0..1"
    )
    parser.add_argument("--outlier-rate", type=contract.rate, default=0.0, metavar="R", help="0..1")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mlsecops_provider.include.generator import generate

    uri = normalise_uri(args.out)
    fmt = "csv" if uri.endswith(".csv") else "parquet"
    frame = generate(
        args.rows,
        args.seed,
        drift=args.drift,
        label_flip_rate=args.label_flip_rate,
        outlier_rate=args.outlier_rate,
    )
    ref = write_table(frame, uri, fmt)
    print(f"{ref.uri}\t{ref.rows} rows\tsha256:{ref.sha256}")
    return contract.EXIT_PASS
