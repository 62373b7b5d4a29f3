"""``mlsecops drift``: compare current data with reference data (PSI / KS per column).

``drift --reference FILE --current FILE [--label COL] [--exclude COL]`` exits 0 when
there is no drift, 1 when drift passes the policy threshold (the drifted columns are
listed), 2 on a usage error (a --label or --exclude column in neither dataset) or when it
could not check. FILE may be a local path, ``file://`` or ``s3://`` URI.
"""

from __future__ import annotations

import argparse
from typing import Any

from mlsecops_provider.core.cli import contract


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "drift",
        help="check current data for drift against reference data",
        description="Per-column PSI (and KS for numeric columns) with the policy's thresholds "
        "(gates.data_validation.screens, overridden by gates.drift). Exit 0 no drift, "
        "1 drift, 2 usage error (e.g. an unknown column) or could not check.",
    )
    parser.add_argument("--reference", required=True, metavar="FILE", help="reference dataset")
    parser.add_argument("--current", required=True, metavar="FILE", help="current dataset")
    contract.add_policy(parser)
    contract.add_report(parser)
    contract.add_label(parser, what="left out of the drift screen")
    contract.add_exclude(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.data.datasets import read_table
    from mlsecops_provider.core.storage import normalise_uri
    from mlsecops_provider.core.validation.drift import DriftConfig, detect_drift

    config = DriftConfig.from_policy(contract.load_cli_policy(args.policy)).with_columns(
        args.label, tuple(args.exclude)
    )
    reference, ref = read_table(normalise_uri(args.reference))
    current, cur = read_table(normalise_uri(args.current))
    named = {"--label": [args.label], "--exclude": args.exclude}
    contract.check_columns(named, reference, current, where="the reference or current data")
    report = detect_drift(
        reference,
        current,
        config,
        reference_ref={"uri": ref.uri, "sha256": ref.sha256, "rows": ref.rows},
        current_ref={"uri": cur.uri, "sha256": cur.sha256, "rows": cur.rows},
    )
    contract.write_report(args.report, report.to_dict())
    screened = f"{report.columns_screened} column(s) screened, max PSI {report.max_psi}"
    if not report.drifted:
        print(f"NO DRIFT {cur.uri}: {screened}")
        return contract.EXIT_PASS
    print(f"DRIFT {cur.uri} against {ref.uri}: {screened}")
    for column in report.drifted_columns:
        figures = report.columns[column]
        ks = f", KS {figures['ks_statistic']}" if "ks_statistic" in figures else ""
        print(f"  drifted: {column} (PSI {figures.get('psi')}{ks})")
    for column in report.missing_columns:
        print(f"  missing: {column}")
    return contract.EXIT_FAIL
