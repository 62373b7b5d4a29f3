"""Seal a promotion: sign the model and the statement that names it, store both, verify.

:func:`seal` signs the model folder (OpenSSF model-signing), stores the signature, signs the
promotion statement (in-toto in a DSSE envelope) whose predicate names that signature and the
signer, and stores the envelope in this run's evidence. :func:`check_sealed` reads the
envelope back by its digest and verifies it and the model with the pinned keys, as a
consumer would. What the predicate attests is the gate's to decide
(:mod:`~mlsecops_provider.core.promotion.gate`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsecops_provider.core.evidence import EvidenceStore
from mlsecops_provider.core.promotion.audit_log import GENESIS, AuditLog
from mlsecops_provider.core.promotion.record import (
    RecordFailure,
    check_record,
    promotion_statement,
)
from mlsecops_provider.core.promotion.signing import (
    PublicKey,
    SignatureError,
    SigningKey,
    dsse_sign,
    envelope_bytes,
    sign_model,
)
from mlsecops_provider.core.provenance.slsa import statement_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sealed:
    """The stored, signed record of one promotion."""

    envelope_uri: str
    envelope_sha256: str
    model_sha256: str
    key_id: str


def audit_head(audit: AuditLog) -> dict[str, Any]:
    """The log's head as this promotion sees it: an anchor in the signed record."""
    last = audit.entries()[-1:] or None
    return {
        "uri": audit.uri,
        "seq": last[0].seq if last else 0,
        "hash": last[0].hash if last else GENESIS,
    }


def seal(
    store: EvidenceStore,
    uri_for: Callable[[str], str],
    key: SigningKey,
    model_dir: str,
    *,
    name: str,
    version: str,
    model_sha256: str,
    predicate: Mapping[str, Any],
) -> Sealed:
    """Sign the model, then the statement naming its signature; store both (``uri_for``
    gives an evidence URI for a file name)."""
    signature_path = Path(model_dir).parent / "model.sig.json"
    subject = sign_model(model_dir, signature_path, key)
    if subject != model_sha256:
        raise SignatureError(f"model-signing digest {subject} differs from sha256 {model_sha256}")
    signature = store.put_bytes(uri_for("model.sig.json"), signature_path.read_bytes())
    statement = promotion_statement(
        name=name,
        version=version,
        model_sha256=model_sha256,
        predicate={
            **predicate,
            "modelSignature": {"uri": signature.uri, "sha256": signature.sha256},
            "signer": {"keyid": key.key_id},
        },
    )
    envelope = dsse_sign(statement_bytes(statement), key)
    ref = store.put_bytes(uri_for("promotion.dsse.json"), envelope_bytes(envelope))
    log.info("Signed promotion record %s (sha256 %s)", ref.uri, ref.sha256)
    return Sealed(ref.uri, ref.sha256, model_sha256, key.key_id)


def check_sealed(
    store: EvidenceStore,
    sealed: Sealed,
    trusted: Mapping[str, PublicKey],
    *,
    name: str,
    version: str,
    model_dir: str,
) -> str | None:
    """Read the record back and verify it and the model with the pinned keys: the problem,
    or ``None``."""
    envelope = store.read_bytes(sealed.envelope_uri, sealed.envelope_sha256)
    try:
        check_record(
            envelope,
            trusted,
            name=name,
            version=version,
            model_dir=model_dir,
            read=store.read_bytes,
        )
    except RecordFailure as err:
        return f"signed record does not verify with the pinned keys: {err}"
    return None
