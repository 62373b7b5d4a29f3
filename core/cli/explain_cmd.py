"""``mlsecops explain``: global SHAP attributions of a candidate model, drift from the champion.

Exit 0 when the rules pass (or only warn), 1 when a forbidden feature drives the model (or
drift fails with ``drift_action: fail``), 2 when the data, a model or the policy cannot be read
or the model cannot be explained (fail closed). Model URIs as for ``mlsecops shadow-eval``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

from mlsecops_provider.core.cli import contract

SHOWN = 10


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="explain a candidate model (SHAP) and compare with the champion",
        description="Global SHAP attributions per input column of a candidate model (and of "
        "the champion on the same rows), explanation drift, forbidden features, features to "
        "drop. Exit 0 pass/warn, 1 fail, 2 could not check.",
    )
    parser.add_argument("--model", required=True, metavar="URI", help="candidate model URI")
    parser.add_argument("--baseline", metavar="URI", help="champion model URI (omit: none)")
    parser.add_argument("--data", required=True, metavar="FILE", help="dataset path or URI")
    contract.add_label(parser, required=True)
    contract.add_policy(parser)
    contract.add_report(parser)
    contract.add_json(parser)
    parser.add_argument("--html", metavar="FILE", help="write the HTML page (with the SVG) here")
    parser.add_argument("--svg", metavar="FILE", help="write the importance bars (SVG) here")
    parser.add_argument(
        "--forbid", metavar="COL[,COL...]", default="", help="features that must not drive it"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.data.datasets import read_table
    from mlsecops_provider.core.explain.config import ExplainConfig
    from mlsecops_provider.core.explain.gate import explain_gate
    from mlsecops_provider.core.explain.report import render_html, render_svg
    from mlsecops_provider.core.settings import Settings
    from mlsecops_provider.core.shadow.models import load_pair
    from mlsecops_provider.core.storage import normalise_uri

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    config = ExplainConfig.from_policy(contract.load_cli_policy(args.policy))
    forbid = tuple(c.strip() for c in args.forbid.split(",") if c.strip())
    settings = Settings.from_env()
    if any(uses_tracking(uri) for uri in (args.model, args.baseline)):
        contract.check_tracking_uri(settings.tracking_uri)
    frame, data_ref = read_table(normalise_uri(args.data))
    with tempfile.TemporaryDirectory(prefix="mlsecops-explain-") as workdir:
        candidate, champion = load_pair(
            settings, args.model, args.baseline, workdir, config.trusted_types
        )
        result, details = explain_gate(
            frame, args.label, candidate, champion, config, forbid,
            {"data": f"sha256:{data_ref.sha256}"},
        )  # fmt: skip
    details["data"] = data_ref.to_dict()
    if args.html:
        write(args.html, render_html(result, details).encode(), "text/html")
    if args.svg:
        write(args.svg, render_svg(details).encode(), "image/svg+xml")
    lifted = ("importance", "champion_importance", "drift", "forbidden", "drop_candidates")
    extra = {key: details[key] for key in lifted}
    contract.write_report(args.report, contract.gate_report(result, details, **extra))
    if args.json:
        contract.print_summary(result)
    else:
        _print(result.to_dict(), details)
    return contract.exit_code(result.verdict)


def uses_tracking(uri: str | None) -> bool:
    """``models:/`` and ``runs:/`` URIs are resolved through the tracking server."""
    return bool(uri) and str(uri).split(":", 1)[0] in ("models", "runs")


def write(target: str, data: bytes, content_type: str) -> None:
    contract.write_output(target, data, content_type)


def _print(result: dict[str, Any], details: dict[str, Any]) -> None:
    print(f"{result['gate']}: {result['verdict'].upper()} - {result['message']}")
    methods = ", ".join(f"{n} {e['method']}" for n, e in details["explainers"].items())
    print(f"  {details['rows_explained']} of {details['rows_available']} rows ({methods})")
    for row in details["importance"][:SHOWN]:
        print(f"  {row['feature']:<28} {row['mean_abs_shap']:.5g}  share {row['share']:.3f}")
    if details["drop_candidates"]:
        print(f"  candidates to drop: {', '.join(details['drop_candidates'])}")
    for finding in result["findings"][:SHOWN]:
        print(f"  {finding.get('severity', 'fail').upper()} {finding['message']}")
