"""Entry point of ``mlsecops``: builds the parser from the subcommand modules.

The contract every subcommand keeps (exit codes, one-line errors, shared flags) is in
:mod:`~mlsecops_provider.core.cli.contract`; :func:`main` enforces it for errors: any
exception a handler raises is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterable, Sequence

from mlsecops_provider.core.cli.contract import (
    CONTRACT_HELP,
    EXIT_ERROR,
    EXIT_FAIL,
    EXIT_PASS,
    check_model_uris,
    one_line,
    print_error,
    report_failure,
)

__all__ = [
    "COMMAND_MODULES",
    "EXIT_ERROR",
    "EXIT_FAIL",
    "EXIT_PASS",
    "build_parser",
    "main",
    "run",
]

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
    "mlsecops_provider.core.cli.privacy_cmd",
    "mlsecops_provider.core.cli.adversarial_cmd",
    "mlsecops_provider.core.cli.backdoor_cmd",
    "mlsecops_provider.core.cli.explain_cmd",
    "mlsecops_provider.core.cli.fairness_cmd",
    "mlsecops_provider.core.cli.serve_cmd",
    "mlsecops_provider.core.cli.warmup_cmd",
)

# Which module registers each subcommand: ``mlsecops NAME ...`` imports only that module
# (start-up time: ``mlsecops hash`` need not import every gate). A name missing here only
# costs time, as the full parser is built then; a test keeps this table complete and true.
COMMAND_OWNERS = {
    "demo-data": "mlsecops_provider.core.cli.demo_data_cmd",
    "validate": "mlsecops_provider.core.cli.validate_cmd",
    "deidentify": "mlsecops_provider.core.cli.deidentify_cmd",
    "hash": "mlsecops_provider.core.cli.hash_cmd",
    "verify": "mlsecops_provider.core.cli.hash_cmd",
    "audit-deps": "mlsecops_provider.core.cli.audit_deps_cmd",
    "verify-promotion": "mlsecops_provider.core.cli.promotion_cmd",
    "audit": "mlsecops_provider.core.cli.promotion_cmd",
    "rollback": "mlsecops_provider.core.cli.promotion_cmd",
    "drift": "mlsecops_provider.core.cli.drift_cmd",
    "scan-model": "mlsecops_provider.core.cli.scan_model_cmd",
    "shadow-eval": "mlsecops_provider.core.cli.shadow_eval_cmd",
    "privacy-risk": "mlsecops_provider.core.cli.privacy_cmd",
    "adversarial": "mlsecops_provider.core.cli.adversarial_cmd",
    "backdoor-scan": "mlsecops_provider.core.cli.backdoor_cmd",
    "explain": "mlsecops_provider.core.cli.explain_cmd",
    "fairness": "mlsecops_provider.core.cli.fairness_cmd",
    "serve": "mlsecops_provider.core.cli.serve_cmd",
    "warmup-gate": "mlsecops_provider.core.cli.warmup_cmd",
}
_FAST_PATH_FLAGS = frozenset({"-v", "--verbose", "--debug"})  # top-level flags, no values


def _help_width() -> int:
    """``shutil.get_terminal_size().columns - 2``, as argparse computes it, without shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal
            columns = 0
    return (columns or 80) - 2


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line too (with a pointer to ``--help``), exit 2."""

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse's own imports shutil (and zlib, bz2, lzma) for the width: start-up time
        return self.formatter_class(prog=self.prog, width=_help_width())  # type: ignore[call-arg]

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_ERROR, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def build_parser(modules: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The parser with the subcommands of ``modules`` (default: all of COMMAND_MODULES)."""
    parser = _Parser(
        prog="mlsecops",
        description="Security gates for ML training pipelines.",
        epilog=CONTRACT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    parser.add_argument(
        "--debug", action="store_true", help="print the traceback of an error (MLSECOPS_DEBUG=1)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES if modules is None else modules:
        importlib.import_module(name).register(subparsers)
    return parser


def parser_for(argv: Sequence[str]) -> argparse.ArgumentParser:
    """Only the module of the subcommand ``argv`` names, when that is unambiguous.

    Anything else (no subcommand, ``--help`` before it, an unknown or misspelt name, a
    module not in COMMAND_MODULES) gets the full parser, so help and errors are unchanged.
    """
    command = next((arg for arg in argv if arg not in _FAST_PATH_FLAGS), "")
    module = COMMAND_OWNERS.get(command)
    if module in COMMAND_MODULES:
        parser = build_parser((module,))
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if command in subparsers.choices:
            return parser
    return build_parser()


def configure_logging(verbose: bool) -> None:
    """Records to stderr, INFO and up with ``--verbose``, else WARNING and up. A command that
    sets ``light`` (``hash``, ``verify``) leaves ``logging`` unloaded unless ``--verbose``: its
    warnings then print as bare lines (Python's last-resort handler)."""
    import logging

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``mlsecops`` command; its exit code (see the contract)."""
    return _dispatch(sys.argv[1:] if argv is None else list(argv))[0]


def run() -> None:
    """The console script (``[project.scripts]``): :func:`main`, then exit.

    A light command (``hash``, ``verify``) whose process has nothing left to do at exit (no
    ``atexit`` callback registered, no other thread running) ends with ``os._exit`` once its
    output is flushed: the interpreter's teardown is ~5-7 ms of its ~30 ms here. Anything
    else, or a flush that fails, exits the normal way.
    """
    code, light = _dispatch(sys.argv[1:])
    streams = (sys.stdout, sys.stderr)  # None when started with that descriptor closed
    if light and None not in streams and _nothing_left_at_exit():
        try:
            for stream in streams:
                stream.flush()
        except (OSError, ValueError):  # e.g. a closed pipe: the normal exit reports it
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


def _nothing_left_at_exit() -> bool:
    import atexit

    count = getattr(atexit, "_ncallbacks", None)  # CPython; elsewhere: exit the normal way
    if count is None or count() != 0:
        return False
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1


def _dispatch(argv: list[str]) -> tuple[int, bool]:
    """The exit code, and whether the command was a light one."""
    parser = parser_for(argv)
    args = parser.parse_args(argv)
    light = bool(getattr(args, "light", False))
    if args.verbose or not light:
        configure_logging(args.verbose)  # light commands (hash) skip the import: start-up time
    return _handled(args, parser), light


def _handled(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not getattr(args, "handler", None):
        if args.command is None:
            parser.print_help()
        else:  # a command group (e.g. ``audit``) without its subcommand
            print_error(
                args.command, f"a subcommand is required (see mlsecops {args.command} --help)"
            )
        return EXIT_ERROR
    try:
        check_model_uris(args)  # an unusable local tracking store fails before MLflow retries
        return int(args.handler(args))
    except KeyboardInterrupt:
        print(f"mlsecops {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the contract: any failure is one line and exit 2
        return report_failure(args, err)


if __name__ == "__main__":
    run()
