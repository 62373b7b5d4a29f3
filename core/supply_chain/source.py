"""Where advisories come from: a local OSV directory, an OSV-compatible URL, or public OSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlsecops_provider.core.errors import ConfigError

PUBLIC_OSV_URL = "https://api.osv.dev/v1/query"


@dataclass(frozen=True)
class AdvisorySource:
    """Where advisories come from: a local OSV directory, an OSV URL, or the public OSV API."""

    advisory_db: str | None = None
    osv_url: str | None = None
    timeout: int = 30
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.advisory_db and self.osv_url:
            raise ConfigError("advisory source: give advisory_db or osv_url, not both")

    @property
    def online(self) -> bool:
        return not self.advisory_db

    @property
    def label(self) -> str:
        if self.advisory_db:
            return f"advisory-db:{Path(self.advisory_db).resolve()}"
        return f"osv:{self.osv_url or PUBLIC_OSV_URL}"
