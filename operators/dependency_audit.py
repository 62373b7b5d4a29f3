"""DependencyAuditOperator: pip-audit of the training environment, with a CycloneDX SBOM."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mlsecops_provider.core.supply_chain.gate import (
    GATE,
    DependencyAuditConfig,
    audit_dependencies,
    sbom_bytes,
)
from mlsecops_provider.core.supply_chain.source import AdvisorySource
from mlsecops_provider.operators._runtime import (
    run_key,
)
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


class DependencyAuditOperator(MLSecOpsOperator):
    """Audit the installed environment (or a pinned requirements file) for known advisories.

    Advisories come from an offline OSV directory (``advisory_db``, the PyPA advisory-database
    layout), an OSV-compatible URL (``osv_url``) or, when neither is given, the public OSV
    API. A source that does not answer is an error, never a clean result. The CycloneDX SBOM
    of the audited set is stored as evidence beside the report.

    :param requirements: a pinned requirements file; None audits the worker's environment.
    :param advisory_db: offline OSV directory (default: ``MLSECOPS_ADVISORY_DB``).
    :param osv_url: OSV-compatible endpoint (default: ``MLSECOPS_OSV_URL``).
    :return: the gate summary, with ``sbom_uri`` and ``sbom_sha256``.
    """

    template_fields: Sequence[str] = fields("requirements", "advisory_db", "osv_url")
    ui_color = "#f3e9f7"

    def __init__(
        self,
        *,
        requirements: str | None = None,
        advisory_db: str | None = None,
        osv_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.requirements = requirements
        self.advisory_db = advisory_db
        self.osv_url = osv_url

    def execute(self, context: Any) -> dict[str, Any]:
        with self.gate_errors_recorded(context, GATE):
            return self._audit(context)

    def _audit(self, context: Any) -> dict[str, Any]:
        config = DependencyAuditConfig.from_policy(self.load_policy())
        source = AdvisorySource(
            advisory_db=self.advisory_db or os.environ.get("MLSECOPS_ADVISORY_DB") or None,
            osv_url=self.osv_url or os.environ.get("MLSECOPS_OSV_URL") or None,
        )
        self.log.info(
            "Auditing %s against %s", self.requirements or "the installed environment", source.label
        )
        result, details = audit_dependencies(
            requirements=self.requirements or None,
            installed=not self.requirements,
            source=source,
            config=config,
        )
        key = run_key(context)
        store = self.evidence_store()
        sbom = store.put_bytes(
            store.uri_for(key.dag_id, key.run_id, GATE, "sbom.cdx.json"), sbom_bytes(details)
        )
        self.log.info("SBOM %s (sha256 %s)", sbom.uri, sbom.sha256)
        report = {k: v for k, v in details.items() if k != "sbom"}
        report["sbom"] = {"uri": sbom.uri, "sha256": sbom.sha256}
        summary = self.record_gate(context, result, report)
        return {**summary, "sbom_uri": sbom.uri, "sbom_sha256": sbom.sha256}
