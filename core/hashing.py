"""SHA-256 of files and directories into a :class:`~mlsecops_provider.core.manifest.Manifest`.

A file hashes to the plain SHA-256 of its bytes; a directory to a manifest whose root digest
equals OpenSSF model-signing's subject digest (the rules are in
:mod:`~mlsecops_provider.core.manifest`).

Symlinks: a link to a regular file inside the directory is followed and hashed under the
link's own path (as model-signing does with ``allow_symlinks=True``; its default refuses
every symlink). A link that leaves the directory, a link to a directory, a broken link and
special files (FIFOs, sockets, devices) are refused with :class:`StorageError`. Files are
opened with ``O_NOFOLLOW``.

Speed: files are hashed in parallel on a thread pool, largest first (hashlib releases the
GIL). A file of at least ``MMAP_MIN_SIZE`` bytes is hashed straight from the page cache
through read-only memory maps of ``MMAP_WINDOW`` bytes at a time (no copy into a buffer,
memory stays bounded); then the file is read on from its mapped size until end of file, so
a file longer than its ``stat`` size is still hashed whole. Smaller files, and files that
cannot be mapped, are read into a reused per-thread buffer. A file truncated by another
process *while* it is mapped ends the process with ``SIGBUS``: no digest is produced, so
this fails closed.
"""

from __future__ import annotations

import _thread
import hashlib
import mmap
import os
import stat
import sys

from mlsecops_provider.core.errors import ConfigError, DataError, StorageError
from mlsecops_provider.core.manifest import DEFAULT_IGNORE, Diff, Manifest

TYPE_CHECKING = False  # typing is not imported at start-up (see core/cli/contract.py)
if TYPE_CHECKING:
    from collections.abc import Iterable


def _log(level: str, message: str, *args: object) -> None:
    """Log through ``logging`` without importing it at start-up (``mlsecops hash``): a
    record below WARNING is dropped unless ``logging`` is loaded (wherever a handler could
    show it, it is)."""
    if level != "warning" and "logging" not in sys.modules:
        return
    import logging

    getattr(logging.getLogger(__name__), level)(message, *args)


BUFFER_SIZE = 1 << 20  # per-thread read buffer for small files and unmappable ones
MMAP_MIN_SIZE = 256 << 10  # files at least this big are hashed through memory maps
MMAP_WINDOW = 64 << 20  # bytes mapped at a time
_local = _thread._local()  # threading's, without loading threading (see _hash_entries)


# ---------------------------------------------------------------------------- single files


def sha256_file(path: str | os.PathLike[str], identity: tuple[int, int] | None = None) -> str:
    """Hex SHA-256 of a file's bytes (memory-mapped or streamed; never followed if a link).

    ``identity`` (device, inode): the file a directory walk found; a path that now opens
    another file (a folder on it swapped for a link meanwhile) is refused.
    """
    source = os.fspath(path)
    fd = _open(source)
    try:
        digest = hashlib.sha256()
        info = os.fstat(fd)
        if identity is not None and (info.st_dev, info.st_ino) != identity:
            raise StorageError(f"{source}: changed while the folder was hashed (another file)")
        size = info.st_size
        offset = _hash_mapped(fd, size, digest) if size >= MMAP_MIN_SIZE else 0
        _hash_read(fd, offset, digest)
        return digest.hexdigest()
    except OSError as err:
        raise StorageError(f"{source}: cannot read ({err.strerror or err})") from err
    finally:
        os.close(fd)


def _open(source: str) -> int:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(source, flags)
    except OSError as err:
        raise StorageError(f"{source}: cannot open ({err.strerror})") from err
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    return fd


def _hash_mapped(fd: int, size: int, digest: hashlib._Hash) -> int:
    """Hash ``[0, size)`` through read-only maps; return how far it got (0: cannot map)."""
    offset = 0
    while offset < size:
        length = min(MMAP_WINDOW, size - offset)
        try:
            window = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ, offset=offset)
        except (OSError, ValueError):  # a file system without mmap: read the rest instead
            return offset
        with window:
            digest.update(window)
        offset += length
    return offset


def _hash_read(fd: int, offset: int, digest: hashlib._Hash) -> None:
    """Hash from ``offset`` to end of file through the thread's reused buffer."""
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = bytearray(BUFFER_SIZE)
    view = memoryview(buf)
    if offset:
        os.lseek(fd, offset, os.SEEK_SET)
    while n := os.readv(fd, [buf]):
        digest.update(view[:n])


# ---------------------------------------------------------------------------- paths


class _Entry:
    __slots__ = ("rel", "source", "size", "identity")

    def __init__(self, rel: str, source: str, st: os.stat_result) -> None:
        self.rel = rel  # POSIX path relative to the root (the manifest key)
        self.source = source  # what to open: the file itself, or the target of a symlink
        self.size = st.st_size
        self.identity = (st.st_dev, st.st_ino)  # checked again when the file is opened


def _as_path(path: str | os.PathLike[str]) -> str:
    """A local path (``os.path`` only: pathlib and urllib cost the command's start-up)."""
    text = os.fspath(path)
    if "://" not in text:
        return text
    from urllib.parse import unquote, urlparse

    parsed = urlparse(text)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise StorageError(f"{text}: hashing needs a local path or a file:// URI on this host")
    return unquote(parsed.path)


def _inside(target: str, root: str) -> bool:
    """``target`` is ``root`` or under it (both resolved)."""
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def _ignored(rel: str, ignore: frozenset[str]) -> bool:
    return any(rel == ig or rel.startswith(ig + "/") for ig in ignore)


def _symlink_entry(link: str, rel: str, real_root: str) -> _Entry:
    try:
        target = os.path.realpath(link, strict=True)
        st = os.stat(target)
    except (OSError, RuntimeError) as err:
        raise StorageError(f"{link}: broken or looping symlink") from err
    if not _inside(target, real_root):
        raise StorageError(f"{link}: symlink points outside {real_root} (to {target}); refused")
    if stat.S_ISDIR(st.st_mode):
        raise StorageError(f"{link}: symlink to a directory; refused (only links to files)")
    if not stat.S_ISREG(st.st_mode):
        raise StorageError(f"{link}: symlink to a special file; refused")
    return _Entry(rel, target, st)


def _walk(real_root: str, ignore: frozenset[str], hidden: list[str] | None = None) -> list[_Entry]:
    entries: list[_Entry] = []
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        folder = os.path.join(real_root, rel_dir) if rel_dir else real_root
        try:
            with os.scandir(folder) as listing:
                children = list(listing)
        except OSError as err:
            raise StorageError(f"{folder}: cannot list ({err.strerror})") from err
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
                entries.append(_Entry(rel, child.path, st))
            else:
                raise StorageError(f"{child.path}: special file (FIFO, socket, device); refused")
    return entries


def _hash_entries(entries: list[_Entry], workers: int | None) -> dict[str, str]:
    """Largest files first, spread over ``workers`` threads (default: all cores)."""
    ordered = sorted(entries, key=lambda e: e.size, reverse=True)
    workers = min(workers or os.cpu_count() or 1, max(len(ordered), 1))
    if workers <= 1:
        return {e.rel: sha256_file(e.source, e.identity) for e in ordered}
    # threads of ``_thread`` taking the next file: ``threading`` (with the functools and
    # collections it imports) and concurrent.futures cost ``mlsecops hash`` its start-up time
    digests: dict[str, str] = {}
    failed: list[BaseException] = []
    pending = iter(ordered)
    lock = _thread.allocate_lock()

    def work(done: _thread.LockType) -> None:
        try:
            while not failed:
                with lock:
                    entry = next(pending, None)
                if entry is None:
                    return
                try:
                    digests[entry.rel] = sha256_file(entry.source, entry.identity)
                except BaseException as err:  # raised in the caller's thread below
                    failed.append(err)
        finally:
            done.release()

    started: list[_thread.LockType] = []
    try:
        for _ in range(workers):
            done = _thread.allocate_lock()
            done.acquire()
            _thread.start_new_thread(work, (done,))
            started.append(done)
    except BaseException as err:  # e.g. no thread can be started: the others stop early
        failed.append(err)
        raise
    finally:
        for done in started:
            done.acquire()  # released by its worker when it has no more files to take
    if failed:
        raise failed[0]
    return digests


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
    name = os.path.basename(os.path.abspath(root))
    try:
        real_root = os.path.realpath(root, strict=True)
        mode = os.stat(real_root).st_mode
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
        _log("warning", "%s: not covered by the digest (ignored): %s", path, ", ".join(hidden))
    if not entries:
        _log("warning", "%s: directory has no files to hash", path)
    files = _hash_entries(entries, workers)
    _log(
        "info",
        "hashed %d files (%d bytes) under %s",
        len(files),
        sum(e.size for e in entries),
        path,
    )
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
