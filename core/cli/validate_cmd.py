"""``mlsecops validate``: check a dataset with an expectation suite and the poisoning screens.

Exit 0 when the gate passes (or only warns), 1 when it fails, 2 when the data, reference,
suite or policy cannot be read (fail closed).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlsecops_provider.core.cli.main import EXIT_FAIL, EXIT_PASS

FINDINGS_SHOWN = 10


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="validate a dataset (GX suite + poisoning screens)",
        description="Check a dataset with a GX expectation suite and the poisoning screens. "
        "Exit 0 pass (or warn only), 1 fail, 2 could not check.",
    )
    parser.add_argument("data", metavar="DATA", help="dataset path or URI (Parquet or CSV)")
    parser.add_argument("--suite", required=True, metavar="SUITE", help="GX suite JSON (path/URI)")
    parser.add_argument("--reference", metavar="REF", help="trusted reference dataset for screens")
    parser.add_argument("--policy", metavar="POLICY", help="policy YAML (default: shipped policy)")
    parser.add_argument("--report", metavar="FILE", help="write the full JSON report here")
    parser.add_argument("--html", metavar="FILE", help="write the Data Docs HTML page here")
    parser.add_argument("--json", action="store_true", help="print the compact summary as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.data.datasets import read_table
    from mlsecops_provider.core.policy import load_policy
    from mlsecops_provider.core.storage import normalise_uri
    from mlsecops_provider.core.validation.gate import (
        ValidationConfig,
        load_suite,
        validate_dataset,
    )

    config = ValidationConfig.from_policy(load_policy(args.policy))
    suite = load_suite(args.suite)
    frame, data_ref = read_table(normalise_uri(args.data))
    subjects = {"data": f"sha256:{data_ref.sha256}"}
    reference = None
    if args.reference:
        reference, ref_ref = read_table(normalise_uri(args.reference))
        subjects["reference"] = f"sha256:{ref_ref.sha256}"
    result, details = validate_dataset(frame, suite, reference, config, subjects)
    page = details.pop("data_docs_html", None)
    if args.html and page:
        _write(args.html, page.encode(), "text/html")
    if args.report:
        report = {"result": result.to_dict(), "details": details}
        data = json.dumps(report, indent=2, sort_keys=True, default=str).encode()
        _write(args.report, data, "application/json")
    if args.json:
        print(json.dumps(result.summary(), indent=2, sort_keys=True))
    else:
        _print_text(result.to_dict())
    return EXIT_FAIL if result.verdict.blocks else EXIT_PASS


def _write(target: str, data: bytes, content_type: str) -> None:
    from mlsecops_provider.core.storage import normalise_uri, storage_for

    uri = normalise_uri(target)
    storage_for(uri).write_bytes(uri, data, content_type)


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
