"""DependencyAuditOperator: pip-audit of the training environment, with a CycloneDX SBOM."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from mlsecops_provider.core.policy import load_policy
from mlsecops_provider.core.supply_chain import (
    GATE,
    AdvisorySource,
    DependencyAuditConfig,
    audit_dependencies,
    sbom_bytes,
)
from mlsecops_provider.operators._runtime import (
    evidence_store,
    gate_errors_recorded,
    record_gate,
    run_key,
)
from mlsecops_provider.operators.links import EvidenceLink


class DependencyAuditOperator(BaseOperator):
    """Audit the installed environment (or a pinned requirements file) for known advisories.

    Advisories come from an offline OSV directory (``advisory_db``, the PyPA advisory-database
    layout), an OSV-compatible URL (``osv_url``) or, when neither is given, the public OSV
    API. A source that does not answer is an error, never a clean result. The CycloneDX SBOM
    of the audited set is stored as evidence beside the report.

    :param requirements: a pinned requirements file; None audits the worker's environment.
    :param advisory_db: offline OSV directory (default: ``MLSECOPS_ADVISORY_DB``).
    :param osv_url: OSV-compatible endpoint (default: ``MLSECOPS_OSV_URL``).
    :param policy_path: policy YAML (section ``gates.dependency_audit``); None: the default.
    :param aws_conn_id: Airflow AWS connection for an ``s3://`` evidence store.
    :return: the gate summary, with ``sbom_uri`` and ``sbom_sha256``.
    """

    template_fields: Sequence[str] = ("requirements", "advisory_db", "osv_url", "policy_path")
    operator_extra_links = (EvidenceLink(),)
    ui_color = "#f3e9f7"

    def __init__(
        self,
        *,
        requirements: str | None = None,
        advisory_db: str | None = None,
        osv_url: str | None = None,
        policy_path: str | None = None,
        aws_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.requirements = requirements
        self.advisory_db = advisory_db
        self.osv_url = osv_url
        self.policy_path = policy_path
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        with gate_errors_recorded(context, GATE, aws_conn_id=self.aws_conn_id):
            return self._audit(context)

    def _audit(self, context: Any) -> dict[str, Any]:
        config = DependencyAuditConfig.from_policy(load_policy(self.policy_path or None))
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
        store = evidence_store(self.aws_conn_id)
        sbom = store.put_bytes(
            store.uri_for(key.dag_id, key.run_id, GATE, "sbom.cdx.json"), sbom_bytes(details)
        )
        self.log.info("SBOM %s (sha256 %s)", sbom.uri, sbom.sha256)
        report = {k: v for k, v in details.items() if k != "sbom"}
        report["sbom"] = {"uri": sbom.uri, "sha256": sbom.sha256}
        summary = record_gate(context, result, report, aws_conn_id=self.aws_conn_id)
        return {**summary, "sbom_uri": sbom.uri, "sbom_sha256": sbom.sha256}
