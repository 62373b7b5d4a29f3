"""``mlsecops scan-model``: scan a model file or directory (our scanner plus modelscan).

Exit 0 when the model is safe (pass or warn), 1 when it is unsafe, 2 when it could not be
scanned (unknown format, unreadable file, modelscan failure: fail closed).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlsecops_provider.core.cli.main import EXIT_ERROR, EXIT_FAIL, EXIT_PASS

FINDINGS_SHOWN = 20


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scan-model",
        help="scan a model for code execution (pickle, zip, npy, keras, skops, ...)",
        description="Scan a model file or directory by content, not by extension. "
        "Exit 0 safe, 1 unsafe, 2 could not be scanned.",
    )
    parser.add_argument("path", metavar="PATH", help="model file, directory, file:// or s3:// URI")
    parser.add_argument("--policy", metavar="FILE", help="policy YAML (default: shipped policy)")
    parser.add_argument("--report", metavar="FILE", help="write the full JSON report here")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.policy import load_policy
    from mlsecops_provider.core.scan.gate import GATE, ModelScanConfig, scan_uri

    config = load_policy(args.policy).config(GATE, ModelScanConfig)
    result = scan_uri(args.path, config)
    if args.report:
        from mlsecops_provider.core.storage import normalise_uri, storage_for

        uri = normalise_uri(args.report)
        data = json.dumps(result.to_dict(), indent=2, sort_keys=True).encode()
        storage_for(uri).write_bytes(uri, data, "application/json")
    _print_table(result.to_dict())
    if result.verdict.value == "error":
        return EXIT_ERROR
    return EXIT_FAIL if result.verdict.blocks else EXIT_PASS


def _print_table(result: dict[str, Any]) -> None:
    print(f"{result['gate']}: {result['verdict'].upper()} - {result['message']}")
    print(f"  subject: {result['subjects'].get('model', '-')}  path: {result['subjects']['path']}")
    findings = result["findings"]
    if not findings:
        return
    columns = ("SEVERITY", "SCANNER", "OFFSET", "OPCODE", "GLOBAL")
    print("  {:<9} {:<9} {:>7} {:<13} {:<28} FILE / REASON".format(*columns))
    for finding in findings[:FINDINGS_SHOWN]:
        offset = "" if finding["offset"] is None else str(finding["offset"])
        print(
            f"  {finding['severity']:<9} {finding['scanner']:<9} {offset:>7} "
            f"{finding['opcode'] or '':<13} {_cut(finding['global'] or '', 28):<28} "
            f"{finding['file']}: {finding['reason']}"
        )
    if len(findings) > FINDINGS_SHOWN:
        print(f"  ... and {len(findings) - FINDINGS_SHOWN} more finding(s) (see --report)")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
