"""``mlsecops validate``: check a dataset with an expectation suite and the poisoning screens.

Exit 0 when the gate passes (or only warns), 1 when it fails, 2 on a usage error or when the
data, reference, suite or policy cannot be used (fail closed): the CLI contract
(:mod:`~mlsecops_provider.core.cli.contract`).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from mlsecops_provider.core.cli import contract

FINDINGS_SHOWN = 10


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="validate a dataset (GX suite + poisoning screens)",
        description="Check a dataset with a GX expectation suite and the poisoning screens "
        "(drift, label shift, outliers, duplicates; against --reference). The label-shift "
        "screen runs when the label column is known (--label or the policy); the report says "
        "when a screen did not run. Exit 0 pass (or warn only), 1 fail, 2 usage error or "
        "could not check.",
    )
    parser.add_argument("data", metavar="DATA", help="dataset path or URI (Parquet or CSV)")
    parser.add_argument("--suite", required=True, metavar="SUITE", help="GX suite JSON (path/URI)")
    parser.add_argument("--reference", metavar="REF", help="trusted reference dataset for screens")
    contract.add_label(parser, what="for the label-shift screen; overrides the policy")
    contract.add_exclude(parser)
    contract.add_policy(parser)
    contract.add_report(parser)
    parser.add_argument("--html", metavar="FILE", help="write the Data Docs HTML page here")
    contract.add_json(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.data.datasets import read_table
    from mlsecops_provider.core.storage import normalise_uri
    from mlsecops_provider.core.validation.gate import ValidationConfig, validate_dataset
    from mlsecops_provider.core.validation.suite import load_suite

    config = ValidationConfig.from_policy(contract.load_cli_policy(args.policy))
    screens = config.screens.with_columns(args.label, tuple(args.exclude))
    config = replace(config, screens=screens)
    suite = load_suite(args.suite)
    frame, data_ref = read_table(normalise_uri(args.data))
    subjects = {"data": f"sha256:{data_ref.sha256}"}
    reference = None
    if args.reference:
        reference, ref_ref = read_table(normalise_uri(args.reference))
        subjects["reference"] = f"sha256:{ref_ref.sha256}"
    named = {"--label": [args.label], "--exclude": args.exclude}
    contract.check_columns(named, frame, reference, where="DATA or REF")
    result, details = validate_dataset(frame, suite, reference, config, subjects)
    page = details.pop("data_docs_html", None)
    if args.html and page:
        contract.write_output(args.html, page.encode(), "text/html")
    contract.write_report(args.report, contract.gate_report(result, details))
    if args.json:
        contract.print_summary(result)
    else:
        _print_text(result.to_dict())
    return contract.exit_code(result.verdict)


def _print_text(result: dict[str, Any]) -> None:
    metrics = result["metrics"]
    print(f"{result['gate']}: {result['verdict'].upper()} - {result['message']}")
    print(
        f"  rows={metrics.get('rows')} expectations passed="
        f"{metrics.get('expectations_successful')}/{metrics.get('expectations_evaluated')}"
    )
    for finding in result["findings"][:FINDINGS_SHOWN]:
        print(f"  {_describe(finding)}")
    hidden = len(result["findings"]) - FINDINGS_SHOWN
    if hidden > 0:
        print(f"  ... and {hidden} more finding(s) (see --report)")


def _describe(finding: dict[str, Any]) -> str:
    if finding.get("kind") == "expectation":
        where = f" [{finding['column']}]" if finding.get("column") else ""
        return (
            f"{finding['severity']:<8} #{finding['index']} {finding['type']}{where}: "
            f"{finding['observed']}"
        )
    if finding.get("kind") == "screen":
        skip = ("kind", "severity", "screen", "drifted")
        figures = " ".join(f"{k}={v}" for k, v in finding.items() if k not in skip)
        return f"{finding['severity']:<8} screen {finding['screen']}: {figures}"
    return str(finding.get("reason", finding))
