"""Keys, DSSE envelopes and model-signing signatures with real cryptography and model-signing."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import stat
from pathlib import Path

import pytest

from mlsecops_provider.core.errors import ConfigError
from mlsecops_provider.core.hashing import hash_path
from mlsecops_provider.core.promotion.signing import (
    PublicKey,
    SignatureError,
    SigningKey,
    dsse_sign,
    dsse_verify,
    ensure_demo_keys,
    load_public_key,
    pae,
    sign_model,
    signature_subject_digest,
    verify_model,
)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "model.skops").write_bytes(b"\x00weights" * 100)
    (folder / "sub" / "extra.json").write_text("{}")
    return folder


def test_pae_matches_the_dsse_spec_example() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_key_id_is_sha256_of_der_and_private_key_never_in_repr(key: SigningKey) -> None:
    from cryptography.hazmat.primitives import serialization

    der = key.public_key.key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key.key_id == hashlib.sha256(der).hexdigest()
    assert repr(key) == f"SigningKey(key_id={key.key_id})"
    assert "PRIVATE" not in repr(key) and "PRIVATE" not in repr(key.public_key)


def test_dsse_round_trip_and_interop_with_securesystemslib(key: SigningKey) -> None:
    envelope = dsse_sign(b'{"hello": "world"}', key)
    verified = dsse_verify(json.dumps(envelope).encode(), {key.key_id: key.public_key})
    assert verified.payload == b'{"hello": "world"}' and verified.key_id == key.key_id

    dsse = pytest.importorskip("securesystemslib.dsse")
    from securesystemslib.signer import SSlibKey

    theirs = SSlibKey.from_crypto(key.public_key.key, keyid=key.key_id)
    accepted = dsse.Envelope.from_dict(copy.deepcopy(envelope)).verify([theirs], 1)
    assert list(accepted) == [key.key_id]


def test_dsse_tampered_payload_untrusted_and_forged_keyid_fail(
    key: SigningKey, other_key: SigningKey
) -> None:
    envelope = dsse_sign(b"payload", key)
    trusted = {key.key_id: key.public_key}
    tampered = {**envelope, "payload": base64.b64encode(b"payl0ad").decode()}
    with pytest.raises(SignatureError, match="does not verify"):
        dsse_verify(tampered, trusted)
    with pytest.raises(SignatureError, match="none is trusted"):
        dsse_verify(envelope, {other_key.key_id: other_key.public_key})
    forged = dsse_sign(b"payload", other_key)
    forged["signatures"][0]["keyid"] = key.key_id  # claims the trusted key id
    with pytest.raises(SignatureError, match="does not verify"):
        dsse_verify(forged, trusted)
    with pytest.raises(SignatureError, match="malformed"):
        dsse_verify(b"not json", trusted)
    with pytest.raises(SignatureError, match="no payloadType or no signatures"):
        dsse_verify({**envelope, "signatures": []}, trusted)


def test_public_keys_load_from_path_relative_to_home_or_inline(
    tmp_path: Path, key: SigningKey
) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "a.pub.pem").write_bytes(key.public_key.pem)
    assert load_public_key("keys/a.pub.pem", tmp_path).key_id == key.key_id
    assert load_public_key(key.public_key.pem.decode()).key_id == key.key_id
    with pytest.raises(ConfigError, match="cannot read"):
        load_public_key("keys/missing.pem", tmp_path)
    with pytest.raises(ConfigError, match="not a PEM public key"):
        load_public_key(key.to_pem().decode())


def test_only_p256_keys_and_encrypted_keys_need_their_passphrase(key: SigningKey) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ConfigError, match="ECDSA P-256"):
        PublicKey.from_pem(rsa_pem)
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ConfigError, match="ECDSA P-256"):
        SigningKey.from_pem(p384)
    encrypted = key.to_pem(b"s3cret")
    assert SigningKey.from_pem(encrypted, "s3cret").key_id == key.key_id
    with pytest.raises(ConfigError) as caught:
        SigningKey.from_pem(encrypted, "wrong")
    assert "s3cret" not in str(caught.value) and "BEGIN" not in str(caught.value)


def test_demo_keys_are_created_once_with_a_private_file_mode(tmp_path: Path) -> None:
    first = ensure_demo_keys(tmp_path)
    second = ensure_demo_keys(tmp_path)
    assert first == second
    assert first.public_path == tmp_path / "keys" / "promotion.pub.pem"
    assert stat.S_IMODE(first.private_path.stat().st_mode) == 0o600
    assert load_public_key(str(first.public_path)).key_id == first.key_id


def test_model_signature_matches_our_digest_and_detects_changes(
    tmp_path: Path, model_dir: Path, key: SigningKey, other_key: SigningKey
) -> None:
    signature = tmp_path / "model.sig.json"
    subject = sign_model(model_dir, signature, key)
    assert subject == hash_path(model_dir).root_digest
    assert signature_subject_digest(signature.read_bytes()) == subject
    assert "PRIVATE" not in signature.read_text()
    verify_model(model_dir, signature, key.public_key)

    with pytest.raises(SignatureError, match=other_key.key_id):
        verify_model(model_dir, signature, other_key.public_key)
    (model_dir / "sub" / "extra.json").write_text('{"changed": true}')
    with pytest.raises(SignatureError, match="does not verify"):
        verify_model(model_dir, signature, key.public_key)


def test_model_signature_must_live_outside_the_model(model_dir: Path, key: SigningKey) -> None:
    with pytest.raises(ConfigError, match="outside the model directory"):
        sign_model(model_dir, model_dir / "model.sig.json", key)
