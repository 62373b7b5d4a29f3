"""Embedded defaults, their overrides, and policy validation that names the field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from mlsecops_provider.core.errors import ConfigError, PolicyError
from mlsecops_provider.core.policy import load_policy, parse_policy
from mlsecops_provider.core.settings import Settings


def test_defaults_live_under_mlsecops_home(tmp_path: Path) -> None:
    settings = Settings.from_env({"MLSECOPS_HOME": str(tmp_path)})
    assert settings.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert settings.evidence_uri == f"file://{tmp_path}/evidence"
    assert settings.tracking_is_local


def test_standard_variables_override(tmp_path: Path) -> None:
    env = {
        "MLSECOPS_HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "MLSECOPS_EVIDENCE_URI": "s3://bucket/evidence/",
    }
    settings = Settings.from_env(env)
    assert settings.tracking_uri == "http://127.0.0.1:5000"
    assert settings.evidence_uri == "s3://bucket/evidence"
    assert not settings.tracking_is_local
    run_uri = settings.run_artifact_uri("dag", "manual__x:y", "data", "raw.parquet")
    assert run_uri.endswith("/dag/manual__x_y/data/raw.parquet")


def test_unknown_store_scheme_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"MLSECOPS_EVIDENCE_URI='gs://x'"):
        Settings.from_env({"MLSECOPS_HOME": str(tmp_path), "MLSECOPS_EVIDENCE_URI": "gs://x"})


@dataclass(frozen=True)
class _Thresholds:
    psi: float = 0.2
    columns: tuple[str, ...] = ()
    enabled: bool = True
    limit: int | None = None


def test_section_config_builds_and_coerces() -> None:
    policy = parse_policy({"gates": {"g": {"psi": 1, "columns": ["a", "b"], "limit": 3}}})
    config = policy.config("g", _Thresholds)
    assert config == _Thresholds(psi=1.0, columns=("a", "b"), limit=3)
    assert policy.config("absent", _Thresholds) == _Thresholds()


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"psi": "high"}, "gates.g.psi"),
        ({"columns": "a"}, "gates.g.columns"),
        ({"enabled": "yes"}, "gates.g.enabled"),
        ({"nope": 1}, "unknown field(s) ['nope']"),
    ],
)
def test_section_config_names_the_bad_field(section: dict[str, object], field: str) -> None:
    policy = parse_policy({"gates": {"g": section}}, "policy.yaml")
    with pytest.raises(PolicyError, match="policy.yaml") as caught:
        policy.config("g", _Thresholds)
    assert field in str(caught.value)


def test_malformed_policy_files(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("gates: [unclosed")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad_yaml)
    with pytest.raises(PolicyError, match="unknown top-level"):
        parse_policy({"gatez": {}})
    with pytest.raises(PolicyError, match="required_gates"):
        parse_policy({"required_gates": "model_scan"})
    with pytest.raises(PolicyError, match="cannot read policy"):
        load_policy(tmp_path / "absent.yaml")


def test_default_policy_loads_with_digest() -> None:
    policy = load_policy()
    assert len(policy.sha256) == 64
