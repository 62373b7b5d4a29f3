"""Keys, DSSE envelopes and OpenSSF model signatures: ECDSA P-256, key-based, never keyless.

* A **key id** is the hex SHA-256 of the public key's DER SubjectPublicKeyInfo.
* **DSSE** (``dsse_sign`` / ``dsse_verify``): the signature covers the pre-authentication
  encoding ``"DSSEv1" SP len(type) SP type SP len(body) SP body``; the envelope is
  ``{"payload": b64, "payloadType": ..., "signatures": [{"keyid": ..., "sig": b64}]}``.
* **Models** (``sign_model`` / ``verify_model``): OpenSSF model-signing with an elliptic key;
  the signature file is written outside the model directory. model-signing reads keys from
  files, so the private key goes to a temporary file encrypted with a one-time passphrase
  (never in plain text on disk, never in logs).

Every verification failure is a :class:`SignatureError` (fail closed).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import ConfigError, SignatureError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import (
        EllipticCurvePrivateKey,
        EllipticCurvePublicKey,
    )

log = logging.getLogger(__name__)

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
KEYS_DIR = "keys"
DEMO_PRIVATE_KEY = "promotion.key.pem"
DEMO_PUBLIC_KEY = "promotion.pub.pem"
CURVE = "secp256r1"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of a payload and its type."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


# ---------------------------------------------------------------------------- keys


@dataclass(frozen=True, repr=False)
class PublicKey:
    """An ECDSA P-256 public key, its PEM and its key id (SHA-256 of the DER SPKI)."""

    key: EllipticCurvePublicKey
    key_id: str
    pem: bytes

    def __repr__(self) -> str:
        return f"PublicKey(key_id={self.key_id})"

    @classmethod
    def from_key(cls, key: Any) -> PublicKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != CURVE:
            raise ConfigError(f"public key: expected ECDSA P-256 ({CURVE}), got {_kind(key)}")
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        der = key.public_bytes(serialization.Encoding.DER, spki)
        pem = key.public_bytes(serialization.Encoding.PEM, spki)
        return cls(key=key, key_id=hashlib.sha256(der).hexdigest(), pem=pem)

    @classmethod
    def from_pem(cls, data: bytes | str, where: str = "public key") -> PublicKey:
        from cryptography.hazmat.primitives import serialization

        raw = data.encode() if isinstance(data, str) else data
        try:
            loaded = serialization.load_pem_public_key(raw)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"{where}: not a PEM public key ({err})") from err
        try:
            return cls.from_key(loaded)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from err


def _kind(key: Any) -> str:
    curve = getattr(getattr(key, "curve", None), "name", None)
    return f"{type(key).__name__}{f' ({curve})' if curve else ''}"


class SigningKey:
    """An ECDSA P-256 private key. Its repr shows only the key id; it is never serialised
    except to a key file (:meth:`to_pem`) or a one-time encrypted temporary file."""

    def __init__(self, private_key: EllipticCurvePrivateKey) -> None:
        self._key = private_key
        self.public_key = PublicKey.from_key(private_key.public_key())

    @property
    def key_id(self) -> str:
        return self.public_key.key_id

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id})"

    @classmethod
    def generate(cls) -> SigningKey:
        from cryptography.hazmat.primitives.asymmetric import ec

        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(
        cls, data: bytes | str, password: bytes | str | None = None, where: str = "signing key"
    ) -> SigningKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        raw = data.encode() if isinstance(data, str) else data
        secret = password.encode() if isinstance(password, str) else password
        try:
            key = serialization.load_pem_private_key(raw, secret)
        except (ValueError, TypeError) as err:  # the message never contains key material
            raise ConfigError(f"{where}: not a usable PEM private key ({err})") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != CURVE:
            raise ConfigError(f"{where}: expected an ECDSA P-256 key, got {_kind(key)}")
        return cls(key)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], password: bytes | str | None = None
    ) -> SigningKey:
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise ConfigError(f"signing key file {path}: cannot read ({err.strerror})") from err
        return cls.from_pem(data, password, where=f"signing key file {path}")

    def sign(self, data: bytes) -> bytes:
        """ECDSA-SHA256 signature (DER) over ``data``."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def to_pem(self, password: bytes | None = None) -> bytes:
        """PKCS#8 PEM, encrypted when a password is given (for writing key files only)."""
        from cryptography.hazmat.primitives import serialization

        encryption: Any = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )


def load_public_key(source: str, home: str | os.PathLike[str] | None = None) -> PublicKey:
    """A public key from inline PEM or a file path (relative paths resolve against ``home``)."""
    text = source.strip()
    if text.startswith("-----BEGIN"):
        return PublicKey.from_pem(text, where="inline public key")
    path = Path(text).expanduser()
    if not path.is_absolute() and home is not None:
        path = Path(home) / path
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"public key file {path}: cannot read ({err.strerror})") from err
    return PublicKey.from_pem(data, where=f"public key file {path}")


@dataclass(frozen=True)
class KeyPair:
    """Where a key pair is on disk and its key id."""

    private_path: Path
    public_path: Path
    key_id: str


def ensure_demo_keys(home: str | os.PathLike[str]) -> KeyPair:
    """Create ``<home>/keys/promotion.{key,pub}.pem`` once (private key mode 0600)."""
    folder = Path(home) / KEYS_DIR
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_path, public_path = folder / DEMO_PRIVATE_KEY, folder / DEMO_PUBLIC_KEY
    if private_path.exists():
        key = SigningKey.from_file(private_path)
    else:
        key = SigningKey.generate()
        _write_new(private_path, key.to_pem(), 0o600)
        log.info("Generated demo signing key %s (key id %s)", private_path, key.key_id)
    if (
        not public_path.exists()
        or PublicKey.from_pem(public_path.read_bytes()).key_id != key.key_id
    ):
        public_path.write_bytes(key.public_key.pem)
    return KeyPair(private_path, public_path, key.key_id)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as err:
        raise ConfigError(f"{path}: already exists (created concurrently?)") from err
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


# ---------------------------------------------------------------------------- DSSE


def dsse_sign(payload: bytes, key: SigningKey, payload_type: str = INTOTO_PAYLOAD_TYPE) -> dict:
    """A DSSE envelope with one signature by ``key``."""
    signature = key.sign(pae(payload_type, payload))
    return {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(signature).decode()}],
    }


def envelope_bytes(envelope: Mapping[str, Any]) -> bytes:
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class VerifiedPayload:
    """What a verified envelope carried and which trusted key signed it."""

    payload_type: str
    payload: bytes
    key_id: str


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object with a key twice has two readings (first or last wins): refused."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _parse_envelope(envelope: bytes | Mapping[str, Any]) -> tuple[str, bytes, list[Any]]:
    try:
        data = (
            json.loads(envelope, object_pairs_hook=_unique)
            if isinstance(envelope, bytes)
            else dict(envelope)
        )
        payload = base64.b64decode(data["payload"], validate=True)
        payload_type, signatures = data["payloadType"], data["signatures"]
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise SignatureError(f"DSSE envelope: malformed ({type(err).__name__}: {err})") from err
    if not isinstance(payload_type, str) or not isinstance(signatures, list) or not signatures:
        raise SignatureError("DSSE envelope: no payloadType or no signatures")
    return payload_type, payload, signatures


def envelope_key_ids(envelope: bytes | Mapping[str, Any]) -> list[str]:
    """The key ids an envelope's signatures name (a malformed envelope fails)."""
    return [
        str(item.get("keyid", "")) if isinstance(item, Mapping) else ""
        for item in _parse_envelope(envelope)[2]
    ]


def dsse_verify(
    envelope: bytes | Mapping[str, Any], trusted: Mapping[str, PublicKey]
) -> VerifiedPayload:
    """Verify an envelope against trusted keys (by key id); one valid trusted signature is
    required. An unknown key id, a bad signature or a malformed envelope fails."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    payload_type, payload, signatures = _parse_envelope(envelope)
    message = pae(payload_type, payload)
    seen = []
    for item in signatures:
        key_id = str(item.get("keyid", "")) if isinstance(item, Mapping) else ""
        seen.append(key_id or "<none>")
        key = trusted.get(key_id)
        if key is None:
            continue
        try:
            key.key.verify(
                base64.b64decode(item["sig"], validate=True), message, ec.ECDSA(hashes.SHA256())
            )
        except (InvalidSignature, KeyError, ValueError, binascii.Error) as err:
            raise SignatureError(f"DSSE signature by key {key_id} does not verify") from err
        return VerifiedPayload(payload_type, payload, key_id)
    raise SignatureError(
        f"DSSE envelope signed by key(s) {', '.join(seen)}; none is trusted "
        f"(trusted: {', '.join(sorted(trusted)) or 'none'})"
    )


# ---------------------------------------------------------------------------- model-signing


def sign_model(
    model_dir: str | os.PathLike[str], signature_path: str | os.PathLike[str], key: SigningKey
) -> str:
    """Sign a model directory with model-signing; return the signature's subject digest."""
    from model_signing import signing

    model, signature = Path(model_dir).resolve(), Path(signature_path).resolve()
    if signature.is_relative_to(model):
        raise ConfigError(f"{signature}: the signature must be outside the model directory")
    password = secrets.token_urlsafe(32).encode()
    with tempfile.TemporaryDirectory(prefix="mlsecops-key-") as tmp:
        key_file = Path(tmp) / "signing.key.pem"
        _write_new(key_file, key.to_pem(password), 0o600)
        try:
            config = signing.Config().use_elliptic_key_signer(
                private_key=key_file,
                password=password,  # type: ignore[arg-type]  # needs bytes despite the hint
            )
            config.sign(model, signature)
        except Exception as err:  # model-signing raises many types; the key never appears
            raise SignatureError(f"model-signing could not sign {model}: {err}") from err
    log.info("Signed model %s with key %s -> %s", model, key.key_id, signature)
    return signature_subject_digest(signature.read_bytes())


def verify_model(
    model_dir: str | os.PathLike[str], signature_path: str | os.PathLike[str], key: PublicKey
) -> None:
    """Verify a model directory against a model-signing signature; any mismatch fails."""
    from model_signing import verifying

    with tempfile.TemporaryDirectory(prefix="mlsecops-pub-") as tmp:
        key_file = Path(tmp) / "verify.pub.pem"
        key_file.write_bytes(key.pem)
        try:
            verifying.Config().use_elliptic_key_verifier(public_key=key_file).verify(
                Path(model_dir), Path(signature_path)
            )
        except Exception as err:  # ValueError, InvalidSignature, parse errors: all fail
            reason = str(err) or type(err).__name__
            raise SignatureError(
                f"model signature {signature_path} does not verify {model_dir} with key "
                f"{key.key_id}: {reason[:300]}"
            ) from err


def signature_subject_digest(signature: bytes) -> str:
    """The SHA-256 subject digest inside a model-signing bundle (its in-toto statement)."""
    try:
        bundle = json.loads(signature)
        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        digest = statement["subject"][0]["digest"]["sha256"]
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as err:
        raise SignatureError(f"model signature: not a model-signing bundle ({err})") from err
    if not isinstance(digest, str):
        raise SignatureError("model signature: subject digest is not a string")
    return digest
