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


def model_uri_of(value: Any) -> str:
    """A model URI, or the train task's output (``model_uri``, else ``models:/name/version``)."""
    from collections.abc import Mapping

    from mlsecops_provider.core.errors import ConfigError

    if isinstance(value, Mapping):
        uri = value.get("model_uri")
        if not uri and value.get("name") and value.get("version"):
            uri = f"models:/{value['name']}/{value['version']}"
        if not uri:
            raise ConfigError(f"model: no model_uri in {dict(value)!r:.200}")
        return str(uri)
    if isinstance(value, str) and value:
        return value
    raise ConfigError("model: expected a model URI or the train task's output")


def champion_uri_of(model: Any, model_uri: str, alias: str) -> str | None:
    """``models:/<registered name>@<alias>``, or None when the model has no registered name."""
    from collections.abc import Mapping

    from mlsecops_provider.core.shadow.models import parse_model_uri

    name = parse_model_uri(model_uri).name
    if isinstance(model, Mapping) and model.get("name"):
        name = str(model["name"])
    return f"models:/{name}@{alias}" if name else None


def read_dataset(value: Any, s3_client_factory: Any = None) -> tuple[Any, Any]:
    """A dataset reference from an upstream task (digest verified) or a URI: (frame, ref)."""
    from collections.abc import Mapping

    from mlsecops_provider.core.data.datasets import dataset_from_xcom, read_table
    from mlsecops_provider.core.errors import ConfigError
    from mlsecops_provider.core.storage import normalise_uri

    if isinstance(value, Mapping):
        data = dict(value.get("dataset", value)) if "uri" not in value else dict(value)
        expected = dataset_from_xcom(data)
        return read_table(expected.uri, expected.sha256, s3_client_factory)
    if isinstance(value, str) and value:
        return read_table(normalise_uri(value), None, s3_client_factory)
    raise ConfigError(f"dataset: expected a dataset reference or a URI, got {value!r:.200}")


def drop_rows_of(frame: Any, other: Any, label: str) -> tuple[Any, int]:
    """``frame`` without the rows that ``other`` has (same digest over the shared columns)."""
    import numpy as np

    from mlsecops_provider.core.attacks.space import row_digests

    columns = [c for c in frame.columns if c in other.columns]
    if label not in columns:
        return frame, 0
    shared = np.isin(row_digests(frame, columns), row_digests(other, columns))
    return frame.loc[~shared].reset_index(drop=True), int(shared.sum())
