"""``mlsecops privacy-risk``: membership inference against a model (and the champion).

Exit 0 when the model does not leak beyond the policy (``gates.privacy_risk``), 1 when it
does, 2 on bad input (a holdout that shares rows with the training data, too few rows, a
model without scores) or when the attack could not run (the CLI contract).
"""

from __future__ import annotations

import argparse
from typing import Any

from mlsecops_provider.core.cli import contract


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "privacy-risk",
        help="membership inference: does the model give its training rows away?",
        description="Attack the model with ART's black-box membership inference and a "
        "loss-threshold attack on training rows (members) and holdout rows (non-members): "
        "AUC with a bootstrap interval, advantage, TPR at 1%% FPR, high-risk training rows. "
        "Exit 0 pass, 1 fail, 2 bad input or could not check.",
    )
    parser.add_argument("--model", required=True, metavar="URI", help="model URI or folder")
    parser.add_argument("--train", required=True, metavar="FILE", help="training rows")
    parser.add_argument("--holdout", required=True, metavar="FILE", help="rows not trained on")
    contract.add_label(parser, required=True)
    parser.add_argument("--baseline", metavar="URI", help="champion model URI (omit: none)")
    contract.add_policy(parser)
    contract.add_report(parser)
    contract.add_json(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.attacks.gate import privacy_risk
    from mlsecops_provider.core.attacks.policy import PRIVACY_GATE, PrivacyConfig
    from mlsecops_provider.core.attacks.runner import text_lines, with_models
    from mlsecops_provider.core.data.datasets import read_table
    from mlsecops_provider.core.settings import Settings
    from mlsecops_provider.core.storage import normalise_uri

    policy = contract.load_cli_policy(args.policy)
    config = policy.config(PRIVACY_GATE, PrivacyConfig)
    train, train_ref = read_table(normalise_uri(args.train))
    holdout, holdout_ref = read_table(normalise_uri(args.holdout))
    contract.check_columns({"--label": [args.label]}, train, where="the training data")
    contract.check_columns({"--label": [args.label]}, holdout, where="the holdout")
    subjects = {
        "dataset:train": f"sha256:{train_ref.sha256}",
        "dataset:holdout": f"sha256:{holdout_ref.sha256}",
    }
    result, details = with_models(
        Settings.from_env(), policy, args.model, args.baseline,
        lambda cand, champ: privacy_risk(train, holdout, args.label, cand, champ, config, subjects),
    )  # fmt: skip
    details["data"] = {"train": train_ref.to_dict(), "holdout": holdout_ref.to_dict()}
    contract.write_report(args.report, contract.gate_report(result, details))
    if args.json:
        contract.print_summary(result)
    else:
        lines = []
        for who in ("candidate", "champion"):
            if who in details:
                d = details[who]
                lines.append(
                    f"{who}: AUC {d['auc']:.3f} (lower {d['auc_lower']:.3f}), advantage "
                    f"{d['advantage']:.3f}, TPR@{config.low_fpr:.0%}FPR {d['tpr_at_low_fpr']:.3f}, "
                    f"high-risk training rows {d['high_risk_share']:.1%}"
                )
        print("\n".join(text_lines(result, lines)))
    return contract.exit_code(result.verdict)
