"""RollbackOperator: move the champion back to the previous champion, verified and audited."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from mlsecops_provider.core.promotion.audit_log import AuditLog, default_log_uri
from mlsecops_provider.core.promotion.checks import SigningPolicy
from mlsecops_provider.core.promotion.rollback import rollback
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.operators._runtime import bad_input_fails_task, run_key
from mlsecops_provider.operators.base import MLSecOpsOperator, fields


class RollbackOperator(MLSecOpsOperator):
    """Roll ``alias`` back to the version under the policy's ``previous_alias``.

    The target's signed promotion record must verify with a key pinned in the policy; the
    alias is re-read before the move (compare-and-set). A refused rollback fails the task
    without retries; both outcomes are appended to the audit log.

    :param registered_model: the registered model's name.
    :param alias: the alias to roll back (default: the policy's ``signing.alias``).
    :param reason: why, for the audit log.
    :return: ``{rolled_back, registered_model, alias, from_version, to_version, reason,
        audit_seq}``.
    """

    template_fields: Sequence[str] = fields("registered_model", "alias", "reason")
    operator_extra_links = ()  # no gate report: no evidence link to show
    ui_color = "#f7ece9"

    def __init__(
        self,
        *,
        registered_model: str,
        alias: str | None = None,
        reason: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.registered_model = registered_model
        self.alias = alias
        self.reason = reason

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        settings = Settings.from_env()
        run = run_key(context)
        s3 = self.s3_factory
        with bad_input_fails_task():
            policy = self.load_policy()
            signing = SigningPolicy.from_policy(policy)
            trusted = signing.trusted_keys(settings.home, f"{policy.source}: signing")
            result = rollback(
                settings,
                self.registered_model,
                trusted,
                audit=AuditLog(default_log_uri(settings.evidence_uri), s3),
                alias=self.alias or signing.alias,
                previous_alias=signing.previous_alias,
                actor=f"airflow:{run.dag_id}/{run.run_id}",
                reason=self.reason,
                s3_client_factory=s3,
            )
        if not result.rolled_back:
            raise AirflowFailException(f"rollback refused: {result.reason}")
        self.log.info(
            "%s@%s rolled back from v%s to v%s",
            result.registered_model,
            result.alias,
            result.from_version,
            result.to_version,
        )
        return dataclasses.asdict(result)
