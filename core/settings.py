"""Embedded defaults and their overrides, read from the environment.

Everything lives under ``MLSECOPS_HOME`` (default ``<cwd>/.mlsecops``) unless a standard
variable says otherwise: ``MLFLOW_TRACKING_URI`` for MLflow, ``MLSECOPS_EVIDENCE_URI`` and
``MLSECOPS_ARTIFACT_URI`` for our stores (``file://`` or ``s3://``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from mlsecops_provider.core.errors import ConfigError

SUPPORTED_STORE_SCHEMES = ("file", "s3")
ASSETS_PACKAGE = "mlsecops_provider.include"


def mlsecops_home(env: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """``MLSECOPS_HOME``, else ``<cwd>/.mlsecops``: the one place this default is decided."""
    env = os.environ if env is None else env
    return Path(env.get("MLSECOPS_HOME") or Path.cwd() / ".mlsecops").resolve()


def packaged_file(*parts: str) -> Path:
    """A file shipped in the package's assets (``include/``), found through importlib.resources.

    The package is installed as plain files (wheel or editable), so the resource is a path.
    """
    from importlib import resources

    return Path(str(resources.files(ASSETS_PACKAGE).joinpath(*parts)))


def _check_store_uri(name: str, uri: str) -> str:
    scheme = urlparse(uri).scheme
    if scheme not in SUPPORTED_STORE_SCHEMES:
        raise ConfigError(
            f"{name}={uri!r}: unknown URI scheme {scheme!r} (expected file:// or s3://)"
        )
    return uri.rstrip("/")


def check_tracking_uri(uri: str) -> str:
    """Fail fast on a local tracking store MLflow cannot use (instead of minutes of retries).

    ``sqlite:///PATH``: PATH's folder must exist and be writable (and PATH, if it exists, be
    a file); ``file:`` stores likewise. Server URIs are left to MLflow.
    """
    parsed = urlparse(uri)
    if parsed.scheme not in ("sqlite", "file", ""):
        return uri
    if parsed.scheme == "sqlite":
        if uri in ("sqlite://", "sqlite:///:memory:"):
            return uri
        if not uri.startswith("sqlite:///"):
            raise ConfigError(f"tracking URI {uri!r}: expected sqlite:///PATH")
        path = Path(uri[len("sqlite:///") :].split("?", 1)[0])
        if path.exists() and not path.is_file():
            raise ConfigError(f"tracking URI {uri!r}: {path} is not a file")
        folder = path.parent  # SQLite creates the file, not its folder
    else:  # a file store: MLflow creates the folders below the nearest existing one
        folder = Path(parsed.path if parsed.scheme else uri)
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"tracking URI {uri!r}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"tracking URI {uri!r}: folder {folder} is not writable")
    return uri


@dataclass(frozen=True)
class Settings:
    """Resolved locations of the embedded (or overridden) services."""

    home: Path
    tracking_uri: str
    evidence_uri: str
    artifact_uri: str
    registry_uri: str | None = None

    def __post_init__(self) -> None:
        _check_store_uri("MLSECOPS_EVIDENCE_URI", self.evidence_uri)
        _check_store_uri("MLSECOPS_ARTIFACT_URI", self.artifact_uri)
        if not self.tracking_uri:
            raise ConfigError("MLFLOW_TRACKING_URI is empty")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = mlsecops_home(env)
        return cls(
            home=home,
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home}/mlflow.db",
            evidence_uri=(env.get("MLSECOPS_EVIDENCE_URI") or f"file://{home}/evidence").rstrip(
                "/"
            ),
            artifact_uri=(env.get("MLSECOPS_ARTIFACT_URI") or f"file://{home}/artifacts").rstrip(
                "/"
            ),
            registry_uri=env.get("MLFLOW_REGISTRY_URI") or None,
        )

    def run_artifact_uri(self, dag_id: str, run_id: str, *parts: str) -> str:
        """Where a DAG run keeps its artifacts (datasets, model copies)."""
        from mlsecops_provider.core.storage import safe_segment

        segments = [safe_segment(p) for p in (dag_id, run_id, *parts)]
        return "/".join([self.artifact_uri, *segments])

    @property
    def mlflow_artifact_root(self) -> str:
        """Artifact root for experiments we create on a local (sqlite/file) tracking store."""
        return f"file://{self.home}/mlartifacts"

    @property
    def tracking_is_local(self) -> bool:
        return urlparse(self.tracking_uri).scheme in ("sqlite", "file", "")
