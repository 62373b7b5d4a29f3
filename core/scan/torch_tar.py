"""Tar archives, and torch's legacy tar checkpoints (``torch.save`` before 0.4; old V7 tar
headers without the ``ustar`` magic included), read as ``torch.load``'s ``legacy_load`` does.

A tar member is scanned like a file. Members that would land outside the extraction
directory (absolute names, ``..``), links and device files are findings. In a torch tar,
``sys_info`` and ``pickle`` are pickles; ``storages`` is a pickled count, then per storage a
pickled ``(key, location, storage_type)`` followed by an int64 element count and the raw
elements, then a pickled list of views; ``tensors`` is a pickled count, then per tensor a
pickle followed by ``ndim``, sizes, strides and an offset. Every pickle is scanned; the raw
parts are skipped by their sizes, exactly as torch reads them.
"""

from __future__ import annotations

import struct
import tarfile
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from mlsecops_provider.core.scan.formats import Blob, Finding
from mlsecops_provider.core.scan.pickle.allowlist import Allowlist
from mlsecops_provider.core.scan.pickle.ops import Global
from mlsecops_provider.core.scan.pickle.scanner import Machine

TORCH_MEMBERS = frozenset({"sys_info", "pickle", "storages", "tensors"})
ELEMENT_SIZE = {
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
    "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
    "BoolStorage": 1, "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16, "QInt8Storage": 1,
    "QUInt8Storage": 1, "QInt32Storage": 4, "UntypedStorage": 1,
}  # fmt: skip
MAX_MEMBERS = 100_000


def tar_members(blob: Blob) -> list[tarfile.TarInfo]:
    """Members as ``tarfile`` lists them (what torch's ``legacy_load`` opens)."""
    with tarfile.open(fileobj=blob.io(), mode="r:", format=tarfile.PAX_FORMAT) as archive:
        members = []
        for info in archive:
            members.append(info)
            if len(members) > MAX_MEMBERS:
                raise tarfile.TarError(f"more than {MAX_MEMBERS} members")
        return members


def member_problem(info: tarfile.TarInfo) -> str | None:
    name = PurePosixPath(info.name)
    if name.is_absolute() or ".." in name.parts:
        return f"tar member {info.name!r} extracts outside the target directory"
    if info.issym() or info.islnk():
        return f"tar member {info.name!r} is a link to {info.linkname!r}"
    if info.isdev() or info.isfifo():
        return f"tar member {info.name!r} is a device or FIFO"
    return None


class TorchTarReader:
    """Scans the ``storages`` and ``tensors`` members of a legacy torch tar."""

    def __init__(self, allow: Allowlist, add: Callable[[list[Finding]], None]) -> None:
        self.allow, self.add = allow, add

    def pickle_at(self, blob: Blob, source: str, pos: int) -> tuple[Any, int]:
        machine = Machine(blob, source, pos, self.allow, False).run()
        self.add(list(machine.findings.values()))
        if not machine.complete:
            raise ValueError(f"broken pickle at byte {pos}: {machine.error}")
        return machine.root, machine.end

    def storages(self, blob: Blob, source: str) -> None:
        count, pos = self.pickle_at(blob, source, 0)
        for _ in range(_count(count)):
            args, pos = self.pickle_at(blob, source, pos)
            kind = args[2] if isinstance(args, tuple) and len(args) == 3 else None
            size = ELEMENT_SIZE.get(kind.name) if isinstance(kind, Global) else None
            if size is None:
                raise ValueError(f"storage of unknown type {getattr(kind, 'full', kind)!r}")
            (numel,) = struct.unpack("<q", _read(blob, pos, 8))
            pos += 8 + _skip(blob, pos + 8, numel * size)
        _, pos = self.pickle_at(blob, source, pos)  # storage views
        _expect_end(blob, pos)

    def tensors(self, blob: Blob, source: str) -> None:
        count, pos = self.pickle_at(blob, source, 0)
        for _ in range(_count(count)):
            _, pos = self.pickle_at(blob, source, pos)
            (ndim,) = struct.unpack("<i", _read(blob, pos, 4))
            if ndim < 0 or ndim > 64:
                raise ValueError(f"tensor with {ndim} dimensions")
            pos += 8 + _skip(blob, pos + 8, 16 * ndim + 8)
        _expect_end(blob, pos)


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_MEMBERS:
        raise ValueError(f"count {value!r} is not a small non-negative integer")
    return value


def _read(blob: Blob, pos: int, count: int) -> bytes:
    data = blob.read(pos, count)
    if len(data) != count:
        raise ValueError(f"truncated at byte {pos}")
    return data


def _skip(blob: Blob, pos: int, count: int) -> int:
    if count < 0 or pos + count > blob.size:
        raise ValueError(f"{count} bytes at byte {pos} run past the end")
    return count


def _expect_end(blob: Blob, pos: int) -> None:
    if pos != blob.size:
        raise ValueError(f"{blob.size - pos} unread bytes after byte {pos}")
