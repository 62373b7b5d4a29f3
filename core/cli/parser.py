"""The argparse parser of ``mlsecops``, built from the subcommand modules.

:func:`parser_for` builds only the module of the subcommand argv names, when that is
unambiguous (start-up time); anything else gets the full parser, so help and errors are
unchanged. Usage errors are one line and exit 2, like every other error (the contract).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import mlsecops_provider.core.cli.commands as commands
from mlsecops_provider.core.cli.contract import CONTRACT_HELP, EXIT_ERROR, one_line

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["build_parser", "parser_for"]


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
    for name in commands.COMMAND_MODULES if modules is None else modules:
        importlib.import_module(name).register(subparsers)
    return parser


def parser_for(argv: Sequence[str]) -> argparse.ArgumentParser:
    """Only the module of the subcommand ``argv`` names, when that is unambiguous.

    Anything else (no subcommand, ``--help`` before it, an unknown or misspelt name, a
    module not in COMMAND_MODULES) gets the full parser, so help and errors are unchanged.
    """
    command, module = commands.named(argv)
    if module is not None:
        parser = build_parser((module,))
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if command in subparsers.choices:
            return parser
    return build_parser()
