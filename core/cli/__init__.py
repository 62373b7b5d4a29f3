"""The ``mlsecops`` command line: one contract for every subcommand.

0 = pass (or warnings only), 1 = a gate failed, 2 = usage error, bad input or could not
decide (fail closed); errors are one line on stderr. The contract and the shared flags live
in :mod:`~mlsecops_provider.core.cli.contract`; :mod:`~mlsecops_provider.core.cli.main`
builds the parser from one module per area (``*_cmd.py``, some with several subcommands),
each exposing ``register(subparsers)`` and a ``handler(args) -> int`` per subcommand.
"""

from __future__ import annotations

from mlsecops_provider.core.cli.contract import EXIT_ERROR, EXIT_FAIL, EXIT_PASS
from mlsecops_provider.core.cli.main import main, run

__all__ = ["EXIT_ERROR", "EXIT_FAIL", "EXIT_PASS", "main", "run"]
