"""Which module registers each ``mlsecops`` subcommand (plain data: no argparse needed).

Every module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``; one may also list
:class:`~mlsecops_provider.core.cli.light.LightCommand` objects in ``LIGHT_COMMANDS``, whose
arguments :mod:`~mlsecops_provider.core.cli.main` reads without loading argparse.
"""

from __future__ import annotations

from mlsecops_provider.core.cli.light import GLOBAL_FLAGS

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMAND_MODULES", "COMMAND_OWNERS", "named"]

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


def named(argv: Sequence[str]) -> tuple[str, str | None]:
    """The subcommand ``argv`` names (the first word after the global flags) and its module,
    ``None`` unless that module is one of :data:`COMMAND_MODULES`."""
    command = next((arg for arg in argv if arg not in GLOBAL_FLAGS), "")
    module = COMMAND_OWNERS.get(command)
    return command, module if module in COMMAND_MODULES else None
