"""``mlsecops drift``: compare current data with reference data (PSI / KS per column).

``drift --reference FILE --current FILE [--policy FILE] [--report FILE]`` exits 0 when
there is no drift, 1 when drift passes the policy threshold (the drifted columns are
listed), 2 when it could not check. FILE may be a local path, ``file://`` or ``s3://`` URI.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlsecops_provider.core.cli.main import EXIT_FAIL, EXIT_PASS
from mlsecops_provider.core.data.datasets import read_table
from mlsecops_provider.core.policy import load_policy
from mlsecops_provider.core.storage import normalise_uri, storage_for
from mlsecops_provider.core.validation.drift import DriftConfig, detect_drift


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "drift",
        help="check current data for drift against reference data",
        description="Per-column PSI (and KS for numeric columns) with the policy's thresholds "
        "(gates.data_validation.screens, overridden by gates.drift). Exit 0 no drift, "
        "1 drift, 2 could not check.",
    )
    parser.add_argument("--reference", required=True, metavar="FILE", help="reference dataset")
    parser.add_argument("--current", required=True, metavar="FILE", help="current dataset")
    parser.add_argument("--policy", metavar="FILE", help="policy YAML (default: the shipped one)")
    parser.add_argument("--report", metavar="FILE", help="write the full JSON report here")
    parser.add_argument("--label-column", metavar="COL", help="label column (left out)")
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="COL", help="column to leave out"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = DriftConfig.from_policy(load_policy(args.policy)).with_columns(
        args.label_column, tuple(args.exclude)
    )
    reference, ref = read_table(normalise_uri(args.reference))
    current, cur = read_table(normalise_uri(args.current))
    report = detect_drift(
        reference,
        current,
        config,
        reference_ref={"uri": ref.uri, "sha256": ref.sha256, "rows": ref.rows},
        current_ref={"uri": cur.uri, "sha256": cur.sha256, "rows": cur.rows},
    )
    if args.report:
        uri = normalise_uri(args.report)
        data = json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str).encode()
        storage_for(uri).write_bytes(uri, data, "application/json")
    screened = f"{report.columns_screened} column(s) screened, max PSI {report.max_psi}"
    if not report.drifted:
        print(f"NO DRIFT {cur.uri}: {screened}")
        return EXIT_PASS
    print(f"DRIFT {cur.uri} against {ref.uri}: {screened}")
    for column in report.drifted_columns:
        figures = report.columns[column]
        ks = f", KS {figures['ks_statistic']}" if "ks_statistic" in figures else ""
        print(f"  drifted: {column} (PSI {figures.get('psi')}{ks})")
    for column in report.missing_columns:
        print(f"  missing: {column}")
    return EXIT_FAIL
