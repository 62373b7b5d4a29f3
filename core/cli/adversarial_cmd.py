"""``mlsecops adversarial``: evasion attacks on a model and the champion, on the same rows.

Exit 0 when the candidate's adversarial accuracy is not below the champion's beyond the
policy's tolerance (``gates.adversarial``), 1 when it is (or an opt-in absolute limit is
crossed), 2 on bad input or when a required attack could not run (the CLI contract).
``--epsilon`` is an L-inf budget in min-max-scaled feature units.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from mlsecops_provider.core.cli import contract


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "adversarial",
        help="evasion attacks (ART black-box, transfer, tree) against candidate and champion",
        description="Attack the model with ART (HopSkipJump/ZOO/Boundary within a time "
        "budget, PGD transferred from a surrogate, the decision-tree attack where it applies), "
        "categoricals held fixed: adversarial accuracy, fooling rate, median perturbation. "
        "Exit 0 pass, 1 fail, 2 bad input or could not check.",
    )
    parser.add_argument("--model", required=True, metavar="URI", help="model URI or folder")
    parser.add_argument("--data", required=True, metavar="FILE", help="rows to attack")
    contract.add_label(parser, required=True)
    parser.add_argument("--baseline", metavar="URI", help="champion model URI (omit: none)")
    parser.add_argument(
        "--epsilon", type=contract.rate, metavar="E",
        help="L-inf budget in min-max-scaled feature units (default: the policy's)",
    )  # fmt: skip
    contract.add_policy(parser)
    contract.add_report(parser)
    contract.add_json(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.attacks.gate import adversarial
    from mlsecops_provider.core.attacks.policy import ADVERSARIAL_GATE, AdversarialConfig
    from mlsecops_provider.core.attacks.runner import text_lines, with_models
    from mlsecops_provider.core.data.datasets import read_table
    from mlsecops_provider.core.settings import Settings
    from mlsecops_provider.core.storage import normalise_uri

    policy = contract.load_cli_policy(args.policy)
    config = policy.config(ADVERSARIAL_GATE, AdversarialConfig)
    if args.epsilon is not None:
        if args.epsilon <= 0:
            raise contract.UsageError(f"--epsilon {args.epsilon}: must be above 0")
        config = replace(config, epsilon=args.epsilon)
    frame, ref = read_table(normalise_uri(args.data))
    contract.check_columns({"--label": [args.label]}, frame)
    subjects = {"data": f"sha256:{ref.sha256}"}
    result, details = with_models(
        Settings.from_env(), policy, args.model, args.baseline,
        lambda cand, champ: adversarial(frame, args.label, cand, champ, config, subjects),
    )  # fmt: skip
    details["data"] = ref.to_dict()
    contract.write_report(args.report, contract.gate_report(result, details))
    if args.json:
        contract.print_summary(result)
    else:
        lines = [f"epsilon {config.epsilon}: {details['norm']}"]
        for name, attack in details["attacks"].items():
            if "skipped" in attack:
                lines.append(f"{name}: skipped ({attack['skipped']})")
                continue
            for who in ("candidate", "champion"):
                if "adversarial_accuracy" in attack.get(who, {}):
                    a = attack[who]
                    lines.append(
                        f"{name} [{who}, {a['rows']} rows]: accuracy {a['clean_accuracy']:.3f} "
                        f"-> {a['adversarial_accuracy']:.3f}, fooling rate {a['fooling_rate']:.3f}"
                    )
        print("\n".join(text_lines(result, lines)))
    return contract.exit_code(result.verdict)
