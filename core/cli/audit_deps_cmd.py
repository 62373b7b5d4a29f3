"""``mlsecops audit-deps``: known vulnerabilities in pinned or installed Python dependencies.

Exit 0 clean (or only warnings), 1 vulnerable (or unaudited packages), 2 could not check —
including an advisory source that cannot be reached (fail closed).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlsecops_provider.core.cli.main import EXIT_ERROR, EXIT_FAIL, EXIT_PASS
from mlsecops_provider.core.errors import AdvisorySourceError
from mlsecops_provider.core.evidence import GateResult, Verdict
from mlsecops_provider.core.policy import load_policy
from mlsecops_provider.core.storage import normalise_uri, storage_for
from mlsecops_provider.core.supply_chain.gate import (
    DependencyAuditConfig,
    audit_dependencies,
    sbom_bytes,
)
from mlsecops_provider.core.supply_chain.source import AdvisorySource

EXIT_CODES = {Verdict.PASS: EXIT_PASS, Verdict.WARN: EXIT_PASS, Verdict.FAIL: EXIT_FAIL}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit-deps",
        help="audit Python dependencies against vulnerability advisories (OSV)",
        description="Audit a pinned requirements file or this interpreter's installed packages "
        "against OSV advisories; write a CycloneDX SBOM and a JSON report. "
        "Exit 0 clean, 1 vulnerable, 2 could not check.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--requirements", metavar="FILE", help="requirements file of name==version")
    target.add_argument("--installed", action="store_true", help="the installed distributions")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--advisory-db", metavar="DIR", help="local directory of OSV records")
    source.add_argument("--osv-url", metavar="URL", help="OSV-compatible query endpoint")
    parser.add_argument("--policy", metavar="FILE", help="policy YAML (default: the shipped one)")
    parser.add_argument("--sbom", metavar="FILE", help="write the CycloneDX JSON SBOM (or s3://)")
    parser.add_argument("--report", metavar="FILE", help="write the JSON report (or s3://)")
    parser.add_argument("--timeout", type=int, default=30, help="seconds per OSV request")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = DependencyAuditConfig.from_policy(load_policy(args.policy))
    source = AdvisorySource(
        advisory_db=args.advisory_db, osv_url=args.osv_url, timeout=args.timeout
    )
    try:
        result, details = audit_dependencies(
            requirements=args.requirements, installed=args.installed, source=source, config=config
        )
    except AdvisorySourceError as err:
        if source.online:
            raise AdvisorySourceError(f"{err}; offline? use --advisory-db DIR") from err
        raise
    _write_outputs(args, result, details)
    _print_result(result)
    return EXIT_CODES.get(result.verdict, EXIT_ERROR)


def _write_outputs(args: argparse.Namespace, result: GateResult, details: dict[str, Any]) -> None:
    report_details = {k: v for k, v in details.items() if k != "sbom"}
    if args.sbom:
        uri = normalise_uri(args.sbom)
        storage_for(uri).write_bytes(uri, sbom_bytes(details), "application/vnd.cyclonedx+json")
        report_details["sbom_uri"] = uri
    if args.report:
        uri = normalise_uri(args.report)
        payload = {"result": result.to_dict(), "details": report_details}
        data = json.dumps(payload, indent=2, sort_keys=True).encode()
        storage_for(uri).write_bytes(uri, data, "application/json")


def _print_result(result: GateResult) -> None:
    print(f"{result.gate}: {result.verdict.value} - {result.message}")
    for finding in result.findings:
        if finding["status"] == "skipped":
            print(f"  {finding['package']}: not audited ({finding['reason']})")
            continue
        aliases = f" ({', '.join(finding['aliases'])})" if finding["aliases"] else ""
        fixes = ", ".join(finding["fix_versions"]) or "none"
        note = " [ignored]" if finding["status"] == "ignored" else ""
        if finding.get("ignore", {}).get("expired"):
            note = f" [ignore expired {finding['ignore']['expires']}]"
        print(
            f"  {finding['package']} {finding['version']}: {finding['id']}{aliases}"
            f" fix: {fixes}{note}"
        )
