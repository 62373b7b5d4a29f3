"""``mlsecops shadow-eval``: a candidate model against the champion on the same rows.

Exit 0 when every threshold passes (or only warns, e.g. a suspiciously large improvement),
1 when one fails, 2 on a usage error or when the data, a model or the policy cannot be used
(fail closed; the CLI contract, :mod:`~mlsecops_provider.core.cli.contract`). Model URIs are
MLflow model URIs (``models:/name/3``, ``models:/name@champion``, ``runs:/…``) or local
model directories; the tracking and registry URIs come from the environment
(``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI``). A baseline alias that is not set means
"no champion yet": only value thresholds apply.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

from mlsecops_provider.core.cli import contract

FINDINGS_SHOWN = 10
SHOWN_METRICS = ("roc_auc", "accuracy", "log_loss", "rmse", "mae", "r2")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "shadow-eval",
        help="compare a candidate model with the champion on the same rows",
        description="Shadow-evaluate a candidate model against a baseline (the champion) on "
        "one dataset: metrics with paired bootstrap intervals, per-slice thresholds, McNemar, "
        "disagreement, PSI, latency, size, robustness. Exit 0 pass or warn, 1 fail, "
        "2 usage error or could not check.",
    )
    parser.add_argument(  # --model: the spelling of explain, fairness and the attack gates
        "--candidate", "--model", dest="candidate", required=True, metavar="URI",
        help="candidate model URI",
    )  # fmt: skip
    parser.add_argument("--baseline", metavar="URI", help="champion model URI (omit: none)")
    parser.add_argument("--data", required=True, metavar="FILE", help="dataset path or URI")
    contract.add_label(parser, required=True)
    contract.add_policy(parser)
    contract.add_report(parser)
    parser.add_argument("--html", metavar="FILE", help="write the HTML report here")
    contract.add_json(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.data.datasets import read_table
    from mlsecops_provider.core.settings import Settings
    from mlsecops_provider.core.shadow.gate import shadow_evaluate
    from mlsecops_provider.core.shadow.models import load_pair
    from mlsecops_provider.core.shadow.policy import ShadowConfig
    from mlsecops_provider.core.shadow.report import render_html
    from mlsecops_provider.core.storage import normalise_uri

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    config = ShadowConfig.from_policy(contract.load_cli_policy(args.policy))
    settings = Settings.from_env()
    if any(_uses_tracking(uri) for uri in (args.candidate, args.baseline)):
        contract.check_tracking_uri(settings.tracking_uri)
    frame, data_ref = read_table(normalise_uri(args.data))
    with tempfile.TemporaryDirectory(prefix="mlsecops-shadow-") as workdir:
        candidate, champion = load_pair(
            settings, args.candidate, args.baseline, workdir, config.trusted_types
        )
        result, details = shadow_evaluate(
            frame, args.label, candidate, champion, config, {"data": f"sha256:{data_ref.sha256}"}
        )
    details["data"] = data_ref.to_dict()
    if args.html:
        contract.write_output(args.html, render_html(result, details).encode(), "text/html")
    contract.write_report(args.report, contract.gate_report(result, details))
    if args.json:
        contract.print_summary(result)
    else:
        _print_text(result.to_dict(), details)
    return contract.exit_code(result.verdict)


def _uses_tracking(uri: str | None) -> bool:
    """``models:/`` and ``runs:/`` URIs are resolved through the tracking server."""
    return bool(uri) and str(uri).split(":", 1)[0] in ("models", "runs")


def _print_text(result: dict[str, Any], details: dict[str, Any]) -> None:
    print(f"{result['gate']}: {result['verdict'].upper()} - {result['message']}")
    overall = details["estimates"]["all"]
    for name in SHOWN_METRICS:
        est = overall.get(name)
        if est is None:
            continue
        line = f"  {name:<10} candidate {est['candidate']:.4f}"
        if est.get("champion") is not None:
            line += f"  champion {est['champion']:.4f}  change {est['delta']:+.4f}"
            if est.get("delta_ci"):
                low, high = est["delta_ci"]
                line += f" [{low:+.4f}, {high:+.4f}]"
        print(line)
    for finding in result["findings"][:FINDINGS_SHOWN]:
        print(f"  {str(finding.get('severity', 'fail')).upper()} {finding['message']}")
    hidden = len(result["findings"]) - FINDINGS_SHOWN
    if hidden > 0:
        print(f"  ... and {hidden} more finding(s) (see --report)")
