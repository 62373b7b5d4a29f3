"""Entry point of ``mlsecops``: one command, its exit code.

The contract every subcommand keeps (exit codes, one-line errors, shared flags) is in
:mod:`~mlsecops_provider.core.cli.contract`; :func:`main` enforces it for errors: any
exception a handler raises is one line on stderr and exit 2. The arguments of a light
command (:mod:`~mlsecops_provider.core.cli.light`) in plain forms are read without
argparse; everything else is parsed by :mod:`~mlsecops_provider.core.cli.parser`.
"""

from __future__ import annotations

import os
import sys

import mlsecops_provider.core.cli.commands as commands
from mlsecops_provider.core.cli.contract import (
    EXIT_ERROR,
    EXIT_FAIL,
    EXIT_PASS,
    check_model_uris,
    print_error,
    report_failure,
)
from mlsecops_provider.core.cli.light import read_argv

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from mlsecops_provider.core.cli.light import Arguments

__all__ = ["EXIT_ERROR", "EXIT_FAIL", "EXIT_PASS", "main", "run"]


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
    args: argparse.Namespace | None = _light_arguments(argv)
    parser = None
    if args is None:
        from mlsecops_provider.core.cli.parser import parser_for

        parser = parser_for(argv)
        args = parser.parse_args(argv)
    light = bool(getattr(args, "light", False))
    if args.verbose or not light:
        configure_logging(args.verbose)  # light commands (hash) skip the import: start-up time
    return _handled(args, parser), light


def _light_arguments(argv: list[str]) -> Arguments | None:
    """The arguments of a light command in plain forms (no argparse loaded), else ``None``."""
    _, module = commands.named(argv)
    if module is None:
        return None
    __import__(module)  # not importlib.import_module: importlib is start-up time too
    light = {c.name: c for c in getattr(sys.modules[module], "LIGHT_COMMANDS", ())}
    return read_argv(argv, light)


def _handled(args: argparse.Namespace, parser: argparse.ArgumentParser | None) -> int:
    if not getattr(args, "handler", None):
        if args.command is None and parser is not None:
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
