"""The ``mlsecops`` command line: one exit-code convention for every subcommand.

0 = pass, 1 = a gate failed, 2 = usage error or could not check (fail closed).
Each subcommand lives in its own module in this package and exposes
``register(subparsers)``, which adds a parser whose ``handler(args) -> int`` does the work.
"""

from __future__ import annotations

from mlsecops_provider.core.cli.main import EXIT_ERROR, EXIT_FAIL, EXIT_PASS, main

__all__ = ["EXIT_ERROR", "EXIT_FAIL", "EXIT_PASS", "main"]
