"""``mlsecops fairness``: per-group metrics and disparities of a candidate, against the champion.

Exit 0 when every check passes (or only warns), 1 when one fails, 2 when the data, a model or
the policy cannot be read, a sensitive column is missing or constant, or the label has one
class (fail closed). With ``--sensitive-data`` the sensitive columns come from a separate
evaluation copy joined by ``--row-key`` (see :mod:`mlsecops_provider.core.fairness.sensitive`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

from mlsecops_provider.core.cli import contract

SHOWN = ("equalized_odds_difference", "demographic_parity_difference")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fairness",
        help="per-group metrics and disparities of a candidate model (Fairlearn)",
        description="Fairness gate: selection rate, TPR, FPR, accuracy and the primary metric "
        "per group, demographic-parity and equalized-odds differences and ratios with "
        "bootstrap intervals, against the champion. Exit 0 pass/warn, 1 fail, 2 could not check.",
    )
    parser.add_argument("--model", required=True, metavar="URI", help="candidate model URI")
    parser.add_argument("--baseline", metavar="URI", help="champion model URI (omit: none)")
    parser.add_argument("--data", required=True, metavar="FILE", help="dataset path or URI")
    contract.add_label(parser, required=True)
    parser.add_argument("--sensitive", required=True, metavar="COL[,COL...]")
    parser.add_argument("--sensitive-data", metavar="FILE", help="separate evaluation copy")
    parser.add_argument("--row-key", metavar="COL", help="join key of --sensitive-data")
    contract.add_policy(parser)
    contract.add_report(parser)
    contract.add_json(parser)
    parser.add_argument("--svg", metavar="FILE", help="write the per-group picture (SVG) here")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.cli.explain_cmd import uses_tracking, write
    from mlsecops_provider.core.data.datasets import read_table
    from mlsecops_provider.core.errors import ConfigError
    from mlsecops_provider.core.fairness.config import FairnessConfig
    from mlsecops_provider.core.fairness.gate import fairness_gate
    from mlsecops_provider.core.fairness.report import render_svg
    from mlsecops_provider.core.fairness.sensitive import join_sensitive
    from mlsecops_provider.core.settings import Settings
    from mlsecops_provider.core.shadow.models import load_pair
    from mlsecops_provider.core.storage import normalise_uri

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    config = FairnessConfig.from_policy(contract.load_cli_policy(args.policy))
    columns = tuple(c.strip() for c in args.sensitive.split(",") if c.strip())
    settings = Settings.from_env()
    if any(uses_tracking(uri) for uri in (args.model, args.baseline)):
        contract.check_tracking_uri(settings.tracking_uri)
    frame, data_ref = read_table(normalise_uri(args.data))
    subjects = {"data": f"sha256:{data_ref.sha256}"}
    if args.sensitive_data:
        key = args.row_key or config.row_key
        if not key:
            raise ConfigError("--sensitive-data needs --row-key (or gates.fairness.row_key)")
        sensitive, sensitive_ref = read_table(normalise_uri(args.sensitive_data))
        frame = join_sensitive(frame, sensitive, key, columns)
        subjects["sensitive_data"] = f"sha256:{sensitive_ref.sha256}"
    with tempfile.TemporaryDirectory(prefix="mlsecops-fairness-") as workdir:
        candidate, champion = load_pair(
            settings, args.model, args.baseline, workdir, config.trusted_types
        )
        result, details = fairness_gate(
            frame, args.label, columns, candidate, champion, config, subjects
        )
    details["data"] = data_ref.to_dict()
    if args.svg:
        write(args.svg, render_svg(details).encode(), "image/svg+xml")
    contract.write_report(args.report, contract.gate_report(result, details))
    if args.json:
        contract.print_summary(result)
    else:
        _print(result.to_dict(), details)
    return contract.exit_code(result.verdict)


def _print(result: dict[str, Any], details: dict[str, Any]) -> None:
    print(f"{result['gate']}: {result['verdict'].upper()} - {result['message']}")
    for column, res in details["columns"].items():
        if not res["judged"]:
            print(f"  {res['note']}")
            continue
        for name in SHOWN:
            d = res["disparities"][name]
            ci = d.get("candidate_ci")
            line = f"  {column} {name}: {d['candidate']}"
            if d.get("candidate") is not None and ci:
                line = f"  {column} {name}: {d['candidate']:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]"
            print(line)
        if res["unjudged_groups"]:
            print(f"  {column} groups too small to judge: {', '.join(res['unjudged_groups'])}")
    for finding in result["findings"][:10]:
        print(f"  {finding.get('severity', finding.get('status', 'fail')).upper()} "
              f"{finding['message']}")  # fmt: skip
