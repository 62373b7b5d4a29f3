"""``mlsecops shadow-eval``: a candidate model against the champion on the same rows.

Exit 0 when every threshold passes, 1 when one fails, 2 when the data, a model or the policy
cannot be read (fail closed). Model URIs are MLflow model URIs (``models:/name/3``,
``models:/name@champion``, ``runs:/…``) or local model directories; the tracking and registry
URIs come from the environment (``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI``). A baseline
alias that is not set means "no champion yet": only value thresholds apply.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from typing import Any

from mlsecops_provider.core.cli.main import EXIT_FAIL, EXIT_PASS

FINDINGS_SHOWN = 10
SHOWN_METRICS = ("roc_auc", "accuracy", "log_loss", "rmse", "mae", "r2")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "shadow-eval",
        help="compare a candidate model with the champion on the same rows",
        description="Shadow-evaluate a candidate model against a baseline (the champion) on "
        "one dataset: metrics with paired bootstrap intervals, per-slice thresholds, McNemar, "
        "disagreement, PSI, latency, size, robustness. Exit 0 pass, 1 fail, 2 could not check.",
    )
    parser.add_argument("--candidate", required=True, metavar="URI", help="candidate model URI")
    parser.add_argument("--baseline", metavar="URI", help="champion model URI (omit: none)")
    parser.add_argument("--data", required=True, metavar="FILE", help="dataset path or URI")
    parser.add_argument("--label", required=True, metavar="COL", help="label column")
    parser.add_argument("--policy", metavar="FILE", help="policy YAML (default: shipped policy)")
    parser.add_argument("--report", metavar="FILE", help="write the full JSON report here")
    parser.add_argument("--html", metavar="FILE", help="write the HTML report here")
    parser.add_argument("--json", action="store_true", help="print the compact summary as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.data.datasets import read_table
    from mlsecops_provider.core.policy import load_policy
    from mlsecops_provider.core.settings import Settings
    from mlsecops_provider.core.shadow.gate import shadow_evaluate
    from mlsecops_provider.core.shadow.models import load_pair
    from mlsecops_provider.core.shadow.policy import ShadowConfig
    from mlsecops_provider.core.shadow.report import render_html
    from mlsecops_provider.core.storage import normalise_uri

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    config = ShadowConfig.from_policy(load_policy(args.policy))
    settings = Settings.from_env()
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
        _write(args.html, render_html(result, details).encode(), "text/html")
    if args.report:
        report = {"result": result.to_dict(), "details": details}
        data = json.dumps(report, indent=2, sort_keys=True, default=str).encode()
        _write(args.report, data, "application/json")
    if args.json:
        print(json.dumps(result.summary(), indent=2, sort_keys=True, default=str))
    else:
        _print_text(result.to_dict(), details)
    return EXIT_FAIL if result.verdict.blocks else EXIT_PASS


def _write(target: str, data: bytes, content_type: str) -> None:
    from mlsecops_provider.core.storage import normalise_uri, storage_for

    uri = normalise_uri(target)
    storage_for(uri).write_bytes(uri, data, content_type)


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
        print(f"  FAIL {finding['message']}")
    hidden = len(result["findings"]) - FINDINGS_SHOWN
    if hidden > 0:
        print(f"  ... and {hidden} more finding(s) (see --report)")
