"""``mlsecops demo-data``: write a generated demo batch (clean, drifted or poisoned)."""

from __future__ import annotations

import argparse
from typing import Any

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.errors import ConfigError
from mlsecops_provider.core.storage import normalise_uri


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo-data", help="write a deterministic demo dataset (credit-risk style, with PII)"
    )
    parser.add_argument("out", help="output path or URI (.parquet or .csv)")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--drift", action="store_true", help="shift feature distributions")
    parser.add_argument("--label-flip-rate", type=float, default=0.0)
    parser.add_argument("--outlier-rate", type=float, default=0.0)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mlsecops_provider.include.generator import generate

    if args.rows < 1:
        raise ConfigError(f"--rows must be at least 1, got {args.rows}")
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
    return 0
