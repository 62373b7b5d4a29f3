"""``mlsecops scan-model``: scan a model file or directory (our scanner plus modelscan).

Exit 0 when the model is safe (pass or warn), 1 when it is unsafe, 2 when it could not be
scanned (unknown format, unreadable file, modelscan failure: fail closed).
"""

from __future__ import annotations

import argparse
from typing import Any

from mlsecops_provider.core.cli import contract

FINDINGS_SHOWN = 20


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scan-model",
        help="scan a model for code execution (pickle, zip, npy, keras, skops, ...)",
        description="Scan a model file or directory by content, not by extension. "
        "Exit 0 safe, 1 unsafe, 2 could not be scanned.",
    )
    parser.add_argument("path", metavar="PATH", help="model file, directory, file:// or s3:// URI")
    contract.add_policy(parser)
    contract.add_report(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.scan.gate import GATE, ModelScanConfig, scan_uri

    config = contract.load_cli_policy(args.policy).config(GATE, ModelScanConfig)
    _refuse_empty_file(args.path)
    result = scan_uri(args.path, config)
    contract.write_report(args.report, result.to_dict())
    _print_table(result.to_dict())
    return contract.exit_code(result.verdict)


def _refuse_empty_file(path: str) -> None:
    """A local file of 0 bytes is no model: bad input (exit 2), not a clean scan."""
    from pathlib import Path

    from mlsecops_provider.core.storage import normalise_uri

    uri = normalise_uri(path)
    local = Path(uri.removeprefix("file://")) if uri.startswith("file://") else None
    if local is not None and local.is_file() and local.stat().st_size == 0:
        raise contract.UsageError(f"{path}: empty file (0 bytes), not a model")


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
