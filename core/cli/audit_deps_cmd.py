"""``mlsecops audit-deps``: known vulnerabilities in pinned or installed Python dependencies.

Exit 0 clean (or only warnings), 1 vulnerable (or unaudited packages), 2 usage error or
could not check — including an advisory source that cannot be reached (fail closed). The
advisory source is ``--advisory-db`` / ``--osv-url``, else ``MLSECOPS_ADVISORY_DB`` /
``MLSECOPS_OSV_URL`` (as for the operator), else the public OSV API.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from mlsecops_provider.core.cli import contract
from mlsecops_provider.core.errors import AdvisorySourceError
from mlsecops_provider.core.evidence import GateResult
from mlsecops_provider.core.supply_chain.gate import (
    DependencyAuditConfig,
    audit_dependencies,
    sbom_bytes,
)
from mlsecops_provider.core.supply_chain.source import AdvisorySource

DB_ENV, URL_ENV = "MLSECOPS_ADVISORY_DB", "MLSECOPS_OSV_URL"


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
    source.add_argument(
        "--advisory-db",
        metavar="DIR",
        help=f"local directory of OSV records (default: ${DB_ENV})",
    )
    source.add_argument(
        "--osv-url", metavar="URL", help=f"OSV-compatible query endpoint (default: ${URL_ENV})"
    )
    contract.add_policy(parser)
    parser.add_argument("--sbom", metavar="FILE", help="write the CycloneDX JSON SBOM (or s3://)")
    contract.add_report(parser)
    parser.add_argument(
        "--timeout", type=contract.positive_int, default=30, help="seconds per OSV request"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = DependencyAuditConfig.from_policy(contract.load_cli_policy(args.policy))
    source = AdvisorySource(**advisory_source(args), timeout=args.timeout)
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
    return contract.exit_code(result.verdict)


def advisory_source(args: argparse.Namespace, env: Any = None) -> dict[str, str | None]:
    """The flags, else ``MLSECOPS_ADVISORY_DB`` / ``MLSECOPS_OSV_URL`` (as the operator reads)."""
    env = os.environ if env is None else env
    if args.advisory_db or args.osv_url:
        return {"advisory_db": args.advisory_db, "osv_url": args.osv_url}
    return {
        "advisory_db": env.get(DB_ENV) or None,
        "osv_url": None if env.get(DB_ENV) else env.get(URL_ENV) or None,
    }


def _write_outputs(args: argparse.Namespace, result: GateResult, details: dict[str, Any]) -> None:
    report_details = {k: v for k, v in details.items() if k != "sbom"}
    if args.sbom:
        report_details["sbom_uri"] = contract.write_output(
            args.sbom, sbom_bytes(details), "application/vnd.cyclonedx+json"
        )
    contract.write_report(args.report, contract.gate_report(result, report_details))


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
