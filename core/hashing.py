"""SHA-256 of files and directories, with a root digest equal to OpenSSF model-signing's.

A file hashes to the plain SHA-256 of its bytes. A directory hashes through a
:class:`Manifest`: every regular file under it, keyed by its relative POSIX path, with its
SHA-256; the **root digest** is the SHA-256 of the concatenated raw 32-byte file digests in
path order (paths compared component by component). That is exactly the subject digest
model-signing 1.1.1 puts in its in-toto payload (file serialization, SHA-256, default
ignores ``.git``, ``.gitattributes``, ``.github``, ``.gitignore`` at the top level).

For a single file, model-signing's subject digest is ``sha256(raw digest of the file)``
(its manifest has one item); :attr:`Manifest.model_signing_digest` gives that value.

Symlinks: a link to a regular file inside the directory is followed and hashed under the
link's own path (as model-signing does with ``allow_symlinks=True``; its default refuses
every symlink). A link that leaves the directory, a link to a directory, a broken link and
special files (FIFOs, sockets, devices) are refused with :class:`StorageError`.

Files are hashed in parallel on a thread pool (hashlib releases the GIL on large updates);
a big file is read by a helper thread into a few reused buffers while the caller hashes,
so memory stays flat and reading overlaps hashing.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import queue
import re
import stat
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mlsecops_provider.core.errors import ConfigError, DataError, StorageError

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = "mlsecops.manifest/v1"
DEFAULT_IGNORE = (".git", ".gitattributes", ".github", ".gitignore")  # as model-signing
BUFFER_SIZE = 1 << 20  # per-thread buffer for small and medium files
PIPELINE_MIN_SIZE = 64 << 20  # files at least this big get a reader thread
PIPELINE_BUFFER = 4 << 20
PIPELINE_DEPTH = 3
_HEX64 = re.compile(r"[0-9a-f]{64}")
_local = threading.local()


# ---------------------------------------------------------------------------- single files


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (streamed; big files read by a helper thread)."""
    with _open(os.fspath(path)) as handle:
        try:
            size = os.fstat(handle.fileno()).st_size
            if size >= PIPELINE_MIN_SIZE:
                return _hash_pipelined(handle)
            return _hash_simple(handle)
        except OSError as err:
            raise StorageError(f"{path}: cannot read ({err.strerror or err})") from err


def _open(source: str) -> io.FileIO:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(source, flags)
    except OSError as err:
        raise StorageError(f"{source}: cannot open ({err.strerror})") from err
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    return io.FileIO(fd, "rb", closefd=True)


def _hash_simple(handle: io.FileIO) -> str:
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = bytearray(BUFFER_SIZE)
    view = memoryview(buf)
    digest = hashlib.sha256()
    while n := handle.readinto(buf):
        digest.update(view[:n])
    return digest.hexdigest()


def _hash_pipelined(handle: io.FileIO) -> str:
    """Hash while a helper thread reads ahead into ``PIPELINE_DEPTH`` reused buffers."""
    free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[bytearray, int] | BaseException] = queue.SimpleQueue()
    for _ in range(PIPELINE_DEPTH):
        free.put(bytearray(PIPELINE_BUFFER))

    def read_ahead() -> None:
        try:
            while (buf := free.get()) is not None:
                n = handle.readinto(buf) or 0
                full.put((buf, n))
                if not n:
                    return
        except Exception as err:  # handed to the hashing thread, which raises it
            full.put(err)

    reader = threading.Thread(target=read_ahead, name="sha256-read-ahead", daemon=True)
    reader.start()
    digest = hashlib.sha256()
    try:
        while True:
            item = full.get()
            if isinstance(item, BaseException):
                raise item
            buf, n = item
            if not n:
                break
            digest.update(memoryview(buf)[:n])
            free.put(buf)
    finally:
        free.put(None)
        reader.join()
    return digest.hexdigest()


# ---------------------------------------------------------------------------- manifests


def _sort_key(rel: str) -> list[str]:
    """model-signing orders ``PurePosixPath`` keys, i.e. component by component."""
    return rel.split("/")


def _check_digest(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise DataError(f"{where}: must be a SHA-256 as 64 lowercase hex characters")
    return value


@dataclass(frozen=True)
class Manifest:
    """Per-file SHA-256 digests of a file or directory and the root digest over them.

    ``root_digest`` is computed from ``files``; if one is given it must match (so a
    manifest read back from JSON proves its own consistency).
    """

    kind: str  # "directory" or "file"
    name: str
    files: Mapping[str, str]
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    root_digest: str = ""
    ignored: tuple[str, ...] = ()  # paths present but left out by ``ignore`` (not digested)

    def __post_init__(self) -> None:
        if self.kind not in ("directory", "file"):
            raise DataError(f"manifest kind: {self.kind!r} is not 'directory' or 'file'")
        if self.kind == "file" and len(self.files) != 1:
            raise DataError("manifest files: a file manifest must list exactly one file")
        for rel, digest in self.files.items():
            _check_digest(digest, f"manifest files[{rel!r}]")
        ordered = dict(sorted(self.files.items(), key=lambda item: _sort_key(item[0])))
        object.__setattr__(self, "files", ordered)
        object.__setattr__(self, "ignore", tuple(self.ignore))
        object.__setattr__(self, "ignored", tuple(sorted(self.ignored)))
        computed = self._compute_root()
        if self.root_digest and self.root_digest != computed:
            raise DataError(
                f"manifest root_digest: {self.root_digest} does not match its files ({computed})"
            )
        object.__setattr__(self, "root_digest", computed)

    def _compute_root(self) -> str:
        if self.kind == "file":
            return next(iter(self.files.values()))
        root = hashlib.sha256()
        for digest in self.files.values():
            root.update(bytes.fromhex(digest))
        return root.hexdigest()

    @property
    def model_signing_digest(self) -> str:
        """The subject digest model-signing's payload has for the same path."""
        if self.kind == "file":
            return hashlib.sha256(bytes.fromhex(self.root_digest)).hexdigest()
        return self.root_digest

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": MANIFEST_SCHEMA,
            "kind": self.kind,
            "name": self.name,
            "algorithm": "sha256",
            "root_digest": self.root_digest,
            "ignore": list(self.ignore),
            "ignored": list(self.ignored),
            "files": dict(self.files),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        if not isinstance(data, Mapping):
            raise DataError("manifest: must be a JSON object")
        if data.get("schema") != MANIFEST_SCHEMA:
            raise DataError(f"manifest schema: expected {MANIFEST_SCHEMA!r}")
        if data.get("algorithm") != "sha256":
            raise DataError("manifest algorithm: only 'sha256' is supported")
        for key, kind in (("name", str), ("files", dict), ("ignore", list)):
            if not isinstance(data.get(key), kind):
                raise DataError(f"manifest {key}: missing or not a {kind.__name__}")
        if not all(isinstance(p, str) for p in data["ignore"]):
            raise DataError("manifest ignore: must be a list of relative paths")
        return cls(
            kind=data.get("kind", ""),
            name=data["name"],
            files=data["files"],
            ignore=tuple(data["ignore"]),
            root_digest=_check_digest(data.get("root_digest"), "manifest root_digest"),
            ignored=tuple(str(p) for p in data.get("ignored") or ()),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as err:
            raise DataError(f"manifest: not valid JSON ({err})") from err
        return cls.from_dict(data)


@dataclass(frozen=True)
class Diff:
    """Paths whose digest changed, that appeared, or that disappeared."""

    changed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()  # present under an ignored path: not covered by the digest

    @property
    def matches(self) -> bool:
        return not (self.changed or self.added or self.missing)


# ---------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class _Entry:
    rel: str  # POSIX path relative to the root (the manifest key)
    source: str  # what to open: the file itself, or the target of a symlink
    size: int


def _as_path(path: str | os.PathLike[str]) -> Path:
    text = os.fspath(path)
    if "://" not in text:
        return Path(text)
    parsed = urlparse(text)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise StorageError(f"{text}: hashing needs a local path or a file:// URI on this host")
    return Path(unquote(parsed.path))


def _ignored(rel: str, ignore: frozenset[str]) -> bool:
    return any(rel == ig or rel.startswith(ig + "/") for ig in ignore)


def _symlink_entry(link: str, rel: str, real_root: Path) -> _Entry:
    try:
        target = Path(link).resolve(strict=True)
        st = target.stat()
    except (OSError, RuntimeError) as err:
        raise StorageError(f"{link}: broken or looping symlink") from err
    if not target.is_relative_to(real_root):
        raise StorageError(f"{link}: symlink points outside {real_root} (to {target}); refused")
    if stat.S_ISDIR(st.st_mode):
        raise StorageError(f"{link}: symlink to a directory; refused (only links to files)")
    if not stat.S_ISREG(st.st_mode):
        raise StorageError(f"{link}: symlink to a special file; refused")
    return _Entry(rel, str(target), st.st_size)


def _walk(real_root: Path, ignore: frozenset[str], hidden: list[str] | None = None) -> list[_Entry]:
    entries: list[_Entry] = []
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        try:
            with os.scandir(real_root / rel_dir) as listing:
                children = list(listing)
        except OSError as err:
            raise StorageError(f"{real_root / rel_dir}: cannot list ({err.strerror})") from err
        for child in children:
            rel = f"{rel_dir}/{child.name}" if rel_dir else child.name
            if _ignored(rel, ignore):
                if hidden is not None:
                    hidden.append(rel)
                continue
            if child.is_symlink():
                entries.append(_symlink_entry(child.path, rel, real_root))
                continue
            st = child.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                pending.append(rel)
            elif stat.S_ISREG(st.st_mode):
                entries.append(_Entry(rel, child.path, st.st_size))
            else:
                raise StorageError(f"{child.path}: special file (FIFO, socket, device); refused")
    return entries


def _hash_entries(entries: list[_Entry], workers: int | None) -> dict[str, str]:
    """Largest files first, spread over ``workers`` threads (default: all cores)."""
    ordered = sorted(entries, key=lambda e: e.size, reverse=True)
    workers = min(workers or os.cpu_count() or 1, max(len(ordered), 1))
    if workers <= 1:
        return {e.rel: sha256_file(e.source) for e in ordered}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sha256") as pool:
        digests = pool.map(lambda e: sha256_file(e.source), ordered)
        return {e.rel: d for e, d in zip(ordered, digests, strict=True)}


def hash_path(
    path: str | os.PathLike[str],
    *,
    ignore: Iterable[str] = DEFAULT_IGNORE,
    workers: int | None = None,
) -> Manifest:
    """Hash a file or a directory (local path or ``file://`` URI) into a :class:`Manifest`.

    ``ignore`` lists paths relative to the directory (each with everything under it).
    """
    if workers is not None and workers < 1:
        raise ConfigError(f"workers: must be at least 1, got {workers}")
    root = _as_path(path)
    name = Path(os.path.abspath(root)).name
    try:
        real_root = root.resolve(strict=True)
        mode = real_root.stat().st_mode
    except (OSError, RuntimeError) as err:
        raise StorageError(f"{path}: no such file or directory") from err
    if stat.S_ISREG(mode):
        return Manifest(kind="file", name=name, files={name: sha256_file(real_root)}, ignore=())
    if not stat.S_ISDIR(mode):
        raise StorageError(f"{path}: not a regular file or directory")
    ignore_set = frozenset(p.strip("/") for p in ignore)
    hidden: list[str] = []
    entries = _walk(real_root, ignore_set, hidden)
    if hidden:
        log.warning("%s: not covered by the digest (ignored): %s", path, ", ".join(hidden))
    if not entries:
        log.warning("%s: directory has no files to hash", path)
    files = _hash_entries(entries, workers)
    log.info("hashed %d files (%d bytes) under %s", len(files), sum(e.size for e in entries), path)
    return Manifest(
        kind="directory",
        name=name,
        files=files,
        ignore=tuple(sorted(ignore_set)),
        ignored=tuple(hidden),
    )


def compare(
    manifest: Manifest,
    path: str | os.PathLike[str],
    workers: int | None = None,
    ignore: Iterable[str] = DEFAULT_IGNORE,
) -> Diff:
    """Hash ``path`` with the caller's fixed ``ignore`` list and report what differs.

    The manifest's own ``ignore`` list is not signed and not in the root digest, so it is
    never trusted: a manifest whose list differs from ``ignore`` is refused (a name added
    there would hide a file added to the folder). Paths present under an ignored name are
    returned in ``Diff.ignored``.
    """
    fixed = tuple(sorted(p.strip("/") for p in ignore))
    if manifest.kind == "directory" and tuple(sorted(manifest.ignore)) != fixed:
        raise DataError(
            f"manifest ignore: {sorted(manifest.ignore)} differs from the fixed list "
            f"{list(fixed)}; refused (an ignore list is not covered by the root digest)"
        )
    current = hash_path(path, ignore=fixed, workers=workers)
    if current.kind != manifest.kind:
        raise DataError(f"{path}: is a {current.kind} but the manifest describes a {manifest.kind}")
    if manifest.kind == "file":  # a single file is compared by content, not by name
        same = current.root_digest == manifest.root_digest
        return Diff() if same else Diff(changed=(manifest.name,))
    old, new = manifest.files, current.files
    return Diff(
        changed=tuple(p for p in old if p in new and old[p] != new[p]),
        added=tuple(p for p in new if p not in old),
        missing=tuple(p for p in old if p not in new),
        ignored=current.ignored,
    )


def model_signing_root_digest(path: str | os.PathLike[str], workers: int | None = None) -> str:
    """The subject digest model-signing 1.1.1 (default hashing config) signs for ``path``."""
    return hash_path(path, workers=workers).model_signing_digest
