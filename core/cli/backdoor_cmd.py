"""``mlsecops backdoor-scan``: search a model for backdoor triggers; screen its training data.

Exit 0 when no trigger at or above the policy's success rate (``gates.backdoor_scan``) is
left unexplained by the reference, 1 when one is (its carrying rows are listed, and written
with ``--quarantine FILE``), 2 on bad input (the CLI contract).
"""

from __future__ import annotations

import argparse
from typing import Any

from mlsecops_provider.core.cli import contract


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backdoor-scan",
        help="search for 1-3 feature triggers that send most rows to one class",
        description="Search the model for backdoor triggers (features set to values inside "
        "or at the edge of their range), judge each against a refit without the rows that "
        "carry it (or the champion), count and list those rows. Exit 0 pass, 1 fail, 2 bad "
        "input or could not check.",
    )
    parser.add_argument("--model", required=True, metavar="URI", help="model URI or folder")
    parser.add_argument("--data", required=True, metavar="FILE", help="the training data")
    contract.add_label(parser, required=True)
    parser.add_argument("--baseline", metavar="URI", help="champion (reference: champion)")
    parser.add_argument("--quarantine", metavar="FILE", help="write the carrying rows here")
    contract.add_policy(parser)
    contract.add_report(parser)
    contract.add_json(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.attacks.gate import backdoor_scan
    from mlsecops_provider.core.attacks.policy import BACKDOOR_GATE, BackdoorConfig
    from mlsecops_provider.core.attacks.runner import text_lines, with_models
    from mlsecops_provider.core.data.datasets import read_table, write_table
    from mlsecops_provider.core.settings import Settings
    from mlsecops_provider.core.storage import normalise_uri

    policy = contract.load_cli_policy(args.policy)
    config = policy.config(BACKDOOR_GATE, BackdoorConfig)
    frame, ref = read_table(normalise_uri(args.data))
    contract.check_columns({"--label": [args.label]}, frame)
    subjects = {"data": f"sha256:{ref.sha256}"}
    result, details = with_models(
        Settings.from_env(), policy, args.model, args.baseline,
        lambda cand, champ: backdoor_scan(frame, args.label, cand, champ, config, subjects),
    )  # fmt: skip
    details["data"] = ref.to_dict()
    if args.quarantine:
        rows = frame.iloc[details["quarantined_row_positions"]]
        details["quarantine"] = write_table(rows, normalise_uri(args.quarantine)).to_dict()
    contract.write_report(args.report, contract.gate_report(result, details))
    if args.json:
        contract.print_summary(result)
    else:
        lines = [
            f"{t['trigger']} -> class {t['target_class']}: success {t['success_rate']:.0%}, "
            f"{t['carrying_rows']} carrying row(s), reference {t['reference']}"
            for t in details["triggers"][:5]
        ]
        lines.append(f"quarantined rows: {details['quarantined_rows']}")
        print("\n".join(text_lines(result, lines)))
    return contract.exit_code(result.verdict)
