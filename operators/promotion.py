"""SignedPromotionGateOperator: sign the evidence and the model, then move the champion alias."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from mlsecops_provider.core.errors import ConfigError
from mlsecops_provider.core.promotion.checks import Approval, Candidate, PromotionRequest
from mlsecops_provider.core.promotion.gate import GATE, PromotionEnv, promote
from mlsecops_provider.core.promotion.signing import SigningKey
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.operators._runtime import (
    run_key,
)
from mlsecops_provider.operators.base import MLSecOpsOperator, fields

DEFAULT_KEY_ENV = "MLSECOPS_SIGNING_KEY"


def load_signing_key(conn_id: str | None, env_var: str | None, path: str | None) -> SigningKey:
    """The private key from an Airflow connection (password = PEM, extra ``passphrase``),
    else an environment variable holding the PEM (``<VAR>_PASSPHRASE``), else a key file."""
    if conn_id:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException as err:
            raise ConfigError(f"Airflow connection {conn_id!r} is not defined") from err
        if not conn.password:
            raise ConfigError(f"Airflow connection {conn_id!r}: password (the PEM key) is empty")
        passphrase = (conn.extra_dejson or {}).get("passphrase")
        return SigningKey.from_pem(conn.password, passphrase, f"Airflow connection {conn_id!r}")
    if env_var and os.environ.get(env_var):
        passphrase = os.environ.get(f"{env_var}_PASSPHRASE")
        return SigningKey.from_pem(os.environ[env_var], passphrase, f"variable {env_var}")
    if path:
        return SigningKey.from_file(path, os.environ.get(f"{DEFAULT_KEY_ENV}_PASSPHRASE"))
    raise ConfigError(
        f"no signing key: set signing_key_conn_id, the variable {env_var or DEFAULT_KEY_ENV} "
        "or signing_key_path"
    )


class SignedPromotionGateOperator(MLSecOpsOperator):
    """Promote a candidate model version behind signed evidence (gate ``promotion``).

    Reads each gate's report by digest and checks the verdicts against the policy, signs an
    in-toto statement of the evidence (DSSE) and the model (OpenSSF model-signing), verifies
    both with the public keys pinned in the policy's ``signing`` section, then moves the alias
    with compare-and-set. A refusal is verdict ``fail`` and an audit-log entry.

    :param model: the candidate from the training task (``{name, version, source_uri}``).
    :param provenance: the provenance task's summary (``statement_uri``, ``model_sha256``,
        ``evidence_uri``, ``evidence_sha256``).
    :param gate_results: the summaries of the run's other gates.
    :param signing_key_conn_id: Airflow connection whose password is the PEM private key
        (from a secrets backend in production; extra ``{"passphrase": ...}`` if encrypted).
    :param signing_key_env: environment variable holding the PEM key (default
        ``MLSECOPS_SIGNING_KEY``), used when no connection is given.
    :param signing_key_path: a PEM key file, used when neither of the above is set.
    :param approval: the result of an Airflow HITL ``HITLOperator`` with the options Approve
        and Reject (``approve.output``), if any. Not ``ApprovalOperator``: its Reject skips
        this task, so the refusal would never reach the audit log.
    :param require_approval: override the policy's ``signing.require_approval``.
    :return: the gate summary plus ``registered_model``, ``version``, ``promoted``,
        ``record_uri`` and ``record_sha256`` (the signed DSSE envelope).
    """

    template_fields: Sequence[str] = fields(
        "model", "provenance", "gate_results", "approval", "signing_key_path"
    )
    ui_color = "#e9eef7"

    def __init__(
        self,
        *,
        model: Any,
        provenance: Any,
        gate_results: Any = (),
        signing_key_conn_id: str | None = None,
        signing_key_env: str | None = DEFAULT_KEY_ENV,
        signing_key_path: str | None = None,
        approval: Any = None,
        require_approval: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.provenance = provenance
        self.gate_results = gate_results
        self.signing_key_conn_id = signing_key_conn_id
        self.signing_key_env = signing_key_env
        self.signing_key_path = signing_key_path
        self.approval = approval
        self.require_approval = require_approval

    def execute(self, context: Any) -> dict[str, Any]:
        with self.gate_errors_recorded(context, GATE):
            return self._promote(context)

    def _request(self, context: Any) -> PromotionRequest:
        summaries = [dict(g) for g in self.gate_results or () if g]
        if self.provenance:
            summaries.append(dict(self.provenance))
        approval = self.approval
        return PromotionRequest(
            candidate=Candidate.from_dict(dict(self.model)),
            gate_summaries=summaries,
            provenance=dict(self.provenance) if self.provenance else None,
            policy=self.load_policy(),
            approval=Approval.from_result(approval) if isinstance(approval, Mapping) else None,
            require_approval=self.require_approval,
        )

    def _promote(self, context: Any) -> dict[str, Any]:
        request = self._request(context)
        key = load_signing_key(
            self.signing_key_conn_id, self.signing_key_env, self.signing_key_path
        )
        self.log.info("Signing with key id %s", key.key_id)
        run = run_key(context)
        env = PromotionEnv.create(Settings.from_env(), run.dag_id, run.run_id, self.s3_factory)
        result, details = promote(request, key, env)
        promoted = not result.verdict.blocks
        extra = {
            "registered_model": request.candidate.name,
            "version": request.candidate.version,
            "promoted": promoted,
            "record_uri": details.get("evidence_uri"),
            "record_sha256": details.get("evidence_sha256"),
        }
        summary = self.record_gate(context, result, details)
        return {**summary, **extra}
