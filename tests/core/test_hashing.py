"""Manifest hashing: digests, model-signing equality, symlink rules, compare and the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import mmap
import os
import time
from pathlib import Path

import pytest

from mlsecops_provider.core import hashing
from mlsecops_provider.core.errors import DataError, StorageError
from mlsecops_provider.core.hashing import compare, hash_path, model_signing_root_digest
from mlsecops_provider.core.manifest import Manifest


def make_model(root: Path) -> Path:
    """A directory that exercises ordering ('a/b' sorts before 'a-c'), nesting and ignores."""
    (root / "a").mkdir(parents=True)
    (root / "a" / "b").write_bytes(b"weights-b")
    (root / "a-c").write_bytes(b"weights-a-c")
    (root / ".hidden").write_bytes(b"hidden")
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "sub" / "deep" / "model.bin").write_bytes(os.urandom(300_000))
    (root / "sub" / ".gitignore").write_bytes(b"not ignored below the top level")
    (root / "empty.txt").write_bytes(b"")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_bytes(b"ref: refs/heads/main\n")
    (root / ".gitignore").write_bytes(b"*.tmp\n")
    return root


def library_root_digest(path: Path, allow_symlinks: bool = False) -> str:
    """model-signing's own hashing API, root digest as its signing payload computes it."""
    import model_signing.hashing

    config = model_signing.hashing.Config().set_allow_symlinks(allow_symlinks)
    root = hashlib.sha256()
    for descriptor in config.hash(path).resource_descriptors():
        root.update(descriptor.digest.digest_value)
    return root.hexdigest()


def test_file_digest_is_plain_sha256(tmp_path: Path) -> None:
    data = os.urandom(100_000)
    (tmp_path / "m.bin").write_bytes(data)
    manifest = hash_path(tmp_path / "m.bin")
    assert manifest.kind == "file"
    assert manifest.root_digest == hashlib.sha256(data).hexdigest()
    assert manifest.model_signing_digest == library_root_digest(tmp_path / "m.bin")


def test_directory_manifest_matches_model_signing(tmp_path: Path) -> None:
    model = make_model(tmp_path / "model")
    manifest = hash_path(model)
    assert list(manifest.files) == [
        ".hidden",
        "a/b",
        "a-c",
        "empty.txt",
        "sub/.gitignore",
        "sub/deep/model.bin",
    ]
    assert manifest.files["a/b"] == hashlib.sha256(b"weights-b").hexdigest()
    assert manifest.root_digest == library_root_digest(model)
    assert model_signing_root_digest(model) == manifest.root_digest


def test_signature_subject_equals_root_digest(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from model_signing import signing

    model = make_model(tmp_path / "model")
    key = ec.generate_private_key(ec.SECP256R1())
    key_path = tmp_path / "key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signing.Config().use_elliptic_key_signer(private_key=key_path).sign(model, tmp_path / "m.sig")
    bundle = json.loads((tmp_path / "m.sig").read_text())
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert payload["subject"][0]["digest"]["sha256"] == hash_path(model).root_digest


def test_mapped_read_and_worker_counts_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory maps (one window, many windows), plain reads and thread counts: one digest."""
    model = make_model(tmp_path / "model")
    (model / "odd.bin").write_bytes(os.urandom(3 * mmap.ALLOCATIONGRANULARITY + 17))
    monkeypatch.setattr(hashing, "MMAP_MIN_SIZE", 1 << 60)  # never mapped: read only
    read_only = hash_path(model, workers=1)
    monkeypatch.setattr(hashing, "MMAP_MIN_SIZE", 1)  # every non-empty file mapped
    monkeypatch.setattr(hashing, "MMAP_WINDOW", mmap.ALLOCATIONGRANULARITY)  # many windows
    mapped = hash_path(model, workers=4)
    assert mapped == read_only
    assert mapped.root_digest == library_root_digest(model)
    data = (model / "odd.bin").read_bytes()
    assert mapped.files["odd.bin"] == hashlib.sha256(data).hexdigest()


def test_bytes_past_the_stat_size_are_hashed_too(tmp_path: Path) -> None:
    """A file whose stat size understates it (it grew; /proc-like files) is hashed to EOF."""
    path = tmp_path / "grows.bin"
    path.write_bytes(os.urandom(hashing.MMAP_MIN_SIZE + 5))
    fd = os.open(path, os.O_RDONLY)
    try:
        digest = hashlib.sha256()
        got = hashing._hash_mapped(fd, hashing.MMAP_MIN_SIZE, digest)  # as if stat said less
        hashing._hash_read(fd, got, digest)
    finally:
        os.close(fd)
    assert got == hashing.MMAP_MIN_SIZE
    assert digest.hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_system_without_mmap_falls_back_to_reading(tmp_path: Path) -> None:
    """A file that cannot be mapped (here a pipe's read end) is read instead of refused."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"streamed bytes")
        os.close(write_end)
        digest = hashlib.sha256()
        assert hashing._hash_mapped(read_end, 1 << 20, digest) == 0
        hashing._hash_read(read_end, 0, digest)
    finally:
        os.close(read_end)
    assert digest.hexdigest() == hashlib.sha256(b"streamed bytes").hexdigest()


def test_symlink_inside_is_followed_like_model_signing(tmp_path: Path) -> None:
    model = make_model(tmp_path / "model")
    (model / "alias.bin").symlink_to("sub/deep/model.bin")
    manifest = hash_path(model)
    assert manifest.files["alias.bin"] == manifest.files["sub/deep/model.bin"]
    assert manifest.root_digest == library_root_digest(model, allow_symlinks=True)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("../outside.bin", "points outside"),
        ("sub", "symlink to a directory"),
        ("nowhere", "broken or looping symlink"),
    ],
)
def test_unsafe_symlinks_are_refused(tmp_path: Path, target: str, message: str) -> None:
    model = make_model(tmp_path / "model")
    (tmp_path / "outside.bin").write_bytes(b"secret")
    (model / "sub" / "link").symlink_to(Path("..") / target)
    with pytest.raises(StorageError, match=message) as info:
        hash_path(model)
    assert str(model / "sub" / "link") in str(info.value)


def test_compare_reports_changed_added_missing(tmp_path: Path) -> None:
    model = make_model(tmp_path / "model")
    manifest = hash_path(model)
    assert compare(manifest, model).matches
    (model / "a" / "b").write_bytes(b"tampered")
    (model / "a-c").unlink()
    (model / "sub" / "new.py").write_bytes(b"import os")
    (model / ".git" / "ORIG_HEAD").write_bytes(b"ignored")
    diff = compare(manifest, model)
    assert (diff.changed, diff.added, diff.missing) == (("a/b",), ("sub/new.py",), ("a-c",))
    assert not diff.matches


def test_compare_file_and_kind_mismatch(tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"one")
    manifest = hash_path(tmp_path / "m.bin")
    (tmp_path / "m.bin").write_bytes(b"two")
    assert compare(manifest, tmp_path / "m.bin").changed == ("m.bin",)
    with pytest.raises(DataError, match="is a directory but the manifest describes a file"):
        compare(manifest, tmp_path)


def test_manifest_json_round_trip_and_tampering(tmp_path: Path) -> None:
    manifest = hash_path(make_model(tmp_path / "model"))
    assert Manifest.from_json(manifest.to_json()) == manifest
    data = json.loads(manifest.to_json())
    data["files"]["a/b"] = "0" * 64
    with pytest.raises(DataError, match="root_digest: .* does not match its files"):
        Manifest.from_dict(data)
    data = json.loads(manifest.to_json())
    data["files"]["a/b"] = "XYZ"
    with pytest.raises(DataError, match=r"files\['a/b'\]"):
        Manifest.from_dict(data)
    with pytest.raises(DataError, match="not valid JSON"):
        Manifest.from_json("{")


def test_missing_path_and_uris(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no such file or directory"):
        hash_path(tmp_path / "absent")
    with pytest.raises(StorageError, match="local path"):
        hash_path("s3://bucket/model")
    (tmp_path / "m.bin").write_bytes(b"x")
    assert hash_path((tmp_path / "m.bin").as_uri()).root_digest == hashlib.sha256(b"x").hexdigest()


# ---------------------------------------------------------------------------- CLI


def test_cli_hash_and_verify_exit_codes(tmp_path: Path, cli, capsys) -> None:
    """Through the shared ``cli`` fixture (tests/conftest.py): ``main([...])`` as a user runs it."""
    model = make_model(tmp_path / "model")
    out = tmp_path / "manifest.json"
    assert cli(["hash", str(model), "--out", str(out)]).code == 0
    assert capsys.readouterr().out.strip() == library_root_digest(model)
    assert cli(["verify", str(model), "--manifest", str(out)]).code == 0
    assert "OK" in capsys.readouterr().out

    (model / "a" / "b").write_bytes(b"tampered")
    (model / "extra").write_bytes(b"new")
    assert cli(["verify", str(model), "--manifest", str(out)]).code == 1
    printed = capsys.readouterr().out
    assert "changed: a/b" in printed and "added: extra" in printed

    assert cli(["verify", str(tmp_path / "absent"), "--manifest", str(out)]).code == 2
    assert cli(["verify", str(model), "--manifest", str(tmp_path / "none.json")]).code == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{}")
    assert cli(["verify", str(model), "--manifest", str(tmp_path / "bad.json")]).code == 2
    assert cli(["verify", str(model)]).code == 2  # --manifest is required


def test_a_read_error_in_a_worker_thread_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file failing in one of the hashing threads fails the whole hash (no partial manifest)."""
    model = make_model(tmp_path / "model")
    real = hashing.sha256_file

    def failing(path: str, identity: tuple[int, int] | None = None) -> str:
        if path.endswith("a-c"):
            raise StorageError(f"{path}: cannot read (Input/output error)")
        return real(path, identity)

    monkeypatch.setattr(hashing, "sha256_file", failing)
    with pytest.raises(StorageError, match="a-c: cannot read"):
        hash_path(model, workers=3)


def test_no_worker_is_left_running_when_a_thread_cannot_be_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second thread failing to start fails the hash, and the first has stopped (it
    takes no file after the failure) before the error reaches the caller."""
    model = make_model(tmp_path / "model")
    real_start, real_hash = hashing._thread.start_new_thread, hashing.sha256_file
    starts: list[object] = []
    hashed_after: list[str] = []
    raised = False

    def start(function: object, args: tuple[object, ...]) -> int:
        starts.append(function)
        if len(starts) == 2:
            raise RuntimeError("can't start new thread")
        return real_start(function, args)

    def slow_hash(path: str, identity: tuple[int, int] | None = None) -> str:
        time.sleep(0.05)  # a worker left running would still be hashing after the return
        if raised:
            hashed_after.append(path)
        return real_hash(path, identity)

    monkeypatch.setattr(hashing._thread, "start_new_thread", start)
    monkeypatch.setattr(hashing, "sha256_file", slow_hash)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        hash_path(model, workers=3)
    raised = True
    time.sleep(0.3)
    assert len(starts) == 2
    assert hashed_after == []  # nothing runs on after hash_path has returned
