"""The provider's Airflow plugin: registers the evidence extra link with the UI.

The gate review pages (a FastAPI app behind Airflow's auth manager) join this plugin.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from mlsecops_provider.operators.links import EvidenceLink


class MLSecOpsPlugin(AirflowPlugin):
    name = "mlsecops"
    operator_extra_links = [EvidenceLink()]
