"""What the CLI and the operators share: load the models and the data, then run one gate."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlsecops_provider.core.evidence import GateResult
    from mlsecops_provider.core.policy import Policy
    from mlsecops_provider.core.settings import Settings
    from mlsecops_provider.core.shadow.models import LoadedModel

Gate = Callable[["LoadedModel", "LoadedModel | None"], "tuple[GateResult, dict[str, Any]]"]


def trusted_types(policy: Policy) -> tuple[str, ...]:
    """The skops allowlist additions of the policy (shared with the shadow evaluation)."""
    from mlsecops_provider.core.shadow.policy import ShadowConfig

    return ShadowConfig.from_policy(policy).trusted_types


def with_models(
    settings: Settings,
    policy: Policy,
    model_uri: str,
    baseline_uri: str | None,
    gate: Gate,
    first_model_ok: bool = False,
) -> tuple[GateResult, dict[str, Any]]:
    """Load the candidate (and the champion, if any) into a temporary folder; run ``gate``."""
    from mlsecops_provider.core.shadow.models import load_pair

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(prefix="mlsecops-attacks-") as workdir:
        candidate, champion = load_pair(
            settings, model_uri, baseline_uri, workdir, trusted_types(policy), first_model_ok
        )
        result, details = gate(candidate, champion)
    details["candidate_model"] = candidate.describe()
    details["champion_model"] = champion.describe() if champion else None
    return result, details


def text_lines(result: GateResult, lines: list[str]) -> list[str]:
    """The CLI's text output: the verdict line, a few figures, the findings."""
    out = [f"{result.gate}: {result.verdict.value.upper()} - {result.message}"]
    out += [f"  {line}" for line in lines]
    out += [f"  FAIL {finding['message']}" for finding in result.findings[:10]]
    return out
