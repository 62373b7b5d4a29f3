"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from mlsecops_provider import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-mlsecops",
        "name": "MLSecOps",
        "description": "Security gates for ML training pipelines: evidence, lineage, signing.",
        "versions": [__version__],
        "operators": [
            {
                "integration-name": "MLSecOps",
                "python-modules": [
                    "mlsecops_provider.operators.ingest",
                    "mlsecops_provider.operators.train",
                    "mlsecops_provider.operators.validation",
                    "mlsecops_provider.operators.pii",
                    "mlsecops_provider.operators.model_scan",
                    "mlsecops_provider.operators.shadow",
                    "mlsecops_provider.operators.privacy_risk",
                    "mlsecops_provider.operators.adversarial",
                    "mlsecops_provider.operators.backdoor_scan",
                    "mlsecops_provider.operators.explainability",
                    "mlsecops_provider.operators.fairness",
                    "mlsecops_provider.operators.register",
                    "mlsecops_provider.operators.dependency_audit",
                    "mlsecops_provider.operators.provenance",
                    "mlsecops_provider.operators.promotion",
                    "mlsecops_provider.operators.rollback",
                    "mlsecops_provider.operators.shadow_warmup",
                    "mlsecops_provider.operators.shards",
                    "mlsecops_provider.operators.validation_shard",
                    "mlsecops_provider.operators.validation_merge",
                    "mlsecops_provider.operators.validation_shard",
                    "mlsecops_provider.operators.validation_merge",
                    "mlsecops_provider.operators.pii_plan",
                    "mlsecops_provider.operators.pii_shard",
                    "mlsecops_provider.operators.pii_merge",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "MLSecOps",
                "python-modules": [
                    "mlsecops_provider.sensors.new_dataset",
                    "mlsecops_provider.sensors.drift",
                    "mlsecops_provider.sensors.shadow_traffic",
                    "mlsecops_provider.sensors.serving_anomaly",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "MLSecOps",
                "python-modules": [
                    "mlsecops_provider.sensors.triggers.new_dataset",
                    "mlsecops_provider.sensors.triggers.shadow_traffic",
                ],
            }
        ],
        "extra-links": ["mlsecops_provider.operators.links.EvidenceLink"],
    }
