"""Entry point of ``mlsecops``: builds the parser from the subcommand modules."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from mlsecops_provider.core.errors import MLSecOpsError

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2

# Subcommand modules, each with ``register(subparsers)``; add new ones here.
COMMAND_MODULES = (
    "mlsecops_provider.core.cli.demo_data_cmd",
    "mlsecops_provider.core.cli.validate_cmd",
    "mlsecops_provider.core.cli.deidentify_cmd",
    "mlsecops_provider.core.cli.hash_cmd",
    "mlsecops_provider.core.cli.audit_deps_cmd",
    "mlsecops_provider.core.cli.promotion_cmd",
    "mlsecops_provider.core.cli.drift_cmd",
    "mlsecops_provider.core.cli.scan_model_cmd",
    "mlsecops_provider.core.cli.shadow_eval_cmd",
    "mlsecops_provider.core.cli.explain_cmd",
    "mlsecops_provider.core.cli.fairness_cmd",
    "mlsecops_provider.core.cli.serve_cmd",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlsecops",
        description="Security gates for ML training pipelines. "
        "Exit codes: 0 pass, 1 gate failed, 2 usage error or could not check.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_ERROR
    try:
        return int(args.handler(args))
    except MLSecOpsError as err:
        print(f"mlsecops {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
