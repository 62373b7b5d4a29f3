"""The one base every operator of the provider shares: connection, policy, evidence link.

Thin on purpose (no hooks of its own): it holds the parameters that every gate takes
(``aws_conn_id``, ``policy_path``), the templated fields they add, the "Evidence report"
extra link, and shortcuts to the shared runtime (:mod:`._runtime`) bound to this
operator's connection.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, BaseOperatorLink

from mlsecops_provider.connections import s3_client_factory
from mlsecops_provider.core.evidence import EvidenceStore, GateResult
from mlsecops_provider.core.policy import Policy, load_policy
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.operators import _runtime
from mlsecops_provider.operators.links import EvidenceLink


class MLSecOpsOperator(BaseOperator):
    """Base of the provider's operators.

    :param policy_path: policy YAML; None: ``MLSECOPS_POLICY`` or the shipped default. Templated.
    :param aws_conn_id: Airflow AWS connection for ``s3://`` URIs (None: boto3's defaults).
    """

    template_fields: Sequence[str] = ("policy_path",)
    operator_extra_links: tuple[BaseOperatorLink, ...] = (EvidenceLink(),)

    def __init__(
        self, *, policy_path: str | None = None, aws_conn_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.policy_path = policy_path
        self.aws_conn_id = aws_conn_id

    @cached_property
    def s3_factory(self) -> Callable[[], Any] | None:
        return s3_client_factory(self.aws_conn_id)

    def load_policy(self) -> Policy:
        return load_policy(self.policy_path or os.environ.get("MLSECOPS_POLICY") or None)

    def evidence_store(self, settings: Settings | None = None) -> EvidenceStore:
        return _runtime.evidence_store(self.aws_conn_id, settings)

    def record_gate(
        self,
        context: Mapping[str, Any],
        result: GateResult,
        details: Mapping[str, Any],
        settings: Settings | None = None,
    ) -> dict[str, Any]:
        """Store the report, log to MLflow, push the link; fail the task if the gate blocks."""
        return _runtime.record_gate(
            context, result, details, aws_conn_id=self.aws_conn_id, settings=settings
        )

    def gate_errors_recorded(
        self, context: Mapping[str, Any], gate: str
    ) -> AbstractContextManager[None]:
        """A gate that cannot decide records verdict ``error`` and fails unretried."""
        return _runtime.gate_errors_recorded(context, gate, aws_conn_id=self.aws_conn_id)


def fields(*names: str) -> tuple[str, ...]:
    """The base's templated fields plus an operator's own."""
    return (*MLSecOpsOperator.template_fields, *names)
