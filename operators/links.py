"""Operator extra link from a gate task to its evidence report."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink


class EvidenceLink(BaseOperatorLink):
    """ "Evidence report": the URI of the gate's report, pushed by the task when it ran.

    Airflow 3 serves extra links from XCom (key ``_link_EvidenceLink``); the task pushes
    the report's URI there, so the link works without access to the evidence store.
    """

    name = "Evidence report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.bases.xcom import BaseXCom as XCom

        value = XCom.get_value(key=self.xcom_key, ti_key=ti_key)
        return str(value) if value else ""
