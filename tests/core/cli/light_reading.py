"""What argparse makes of a light command's argv: the reference the light reader must match."""

from __future__ import annotations

import contextlib
import io

from mlsecops_provider.core.cli import hash_cmd
from mlsecops_provider.core.cli.parser import build_parser

LIGHT = {command.name: command for command in hash_cmd.LIGHT_COMMANDS}


def argparse_reading(argv: list[str]) -> dict[str, object] | None:
    """argparse's attributes for ``argv``, or ``None`` if it refuses it."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return vars(build_parser(("mlsecops_provider.core.cli.hash_cmd",)).parse_args(argv))
        except SystemExit:
            return None
