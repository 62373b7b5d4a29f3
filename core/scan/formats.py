"""Model file formats recognised by content (magic bytes), never by file name.

Holds the byte-range abstraction (:class:`Blob`) the scanners read through without copying
whole files, the :class:`Finding` record, format detection, validators for the formats that
carry no code (safetensors, ``.npy`` headers, JSON/text). Compressed streams and zip
archives are read by :mod:`.containers`.
"""

from __future__ import annotations

import ast
import codecs
import io
import json
import math
import pickletools
import struct
import zlib
from dataclasses import asdict, dataclass
from typing import Any

SEVERITIES = ("info", "low", "medium", "high", "critical")
ERROR = "error"
SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024
NPY_MAX_HEADER = 10_000
_PICKLE_OPCODES = frozenset(op.code.encode("latin-1")[0] for op in pickletools.opcodes)
_SAFETENSORS_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16,
    "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64,
    "F64": 64, "C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One problem found in one file (``file`` is ``path[:zip member[:...]]``)."""

    file: str
    severity: str
    reason: str
    offset: int | None = None
    opcode: str | None = None
    global_name: str | None = None
    scanner: str = "mlsecops"

    def __post_init__(self) -> None:
        reason = " ".join(str(self.reason).split())  # one line, whatever a library raised
        object.__setattr__(self, "reason", reason if len(reason) <= 600 else reason[:599] + "…")
        if self.severity not in (*SEVERITIES, ERROR):
            raise ValueError(f"finding severity {self.severity!r} is not one of {SEVERITIES}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["global"] = data.pop("global_name")
        return data


def severity_rank(severity: str) -> int:
    """info=0 ... critical=4; ``error`` ranks above everything (fail closed)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


class Blob:
    """A byte range ``[start, end)`` of a ``bytes`` object or an ``mmap``, read lazily."""

    __slots__ = ("base", "start", "end")

    def __init__(self, base: Any, start: int = 0, end: int | None = None) -> None:
        self.base = base
        self.start = start
        self.end = len(base) if end is None else end

    @property
    def size(self) -> int:
        return self.end - self.start

    def read(self, offset: int, length: int) -> bytes:
        lo = self.start + max(offset, 0)
        return bytes(self.base[lo : min(lo + max(length, 0), self.end)])

    def find(self, sub: bytes, offset: int = 0) -> int:
        pos = int(self.base.find(sub, self.start + offset, self.end))
        return pos - self.start if pos >= 0 else -1

    def sub(self, start: int, end: int | None = None) -> Blob:
        stop = self.end if end is None else min(self.start + end, self.end)
        return Blob(self.base, min(self.start + start, stop), stop)

    def tobytes(self) -> bytes:
        return self.read(0, self.size)

    def crc32(self) -> int:
        crc = 0
        for offset in range(0, self.size, 1 << 24):
            crc = zlib.crc32(self.read(offset, 1 << 24), crc)
        return crc

    def io(self, pos: int = 0) -> BlobIO:
        return BlobIO(self, pos)


class BlobIO(io.RawIOBase):
    """A seekable, read-only file object over a :class:`Blob` (for zipfile and pickles)."""

    def __init__(self, blob: Blob, pos: int = 0) -> None:
        super().__init__()
        self.blob, self.pos = blob, pos

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        count = self.blob.size - self.pos if size is None or size < 0 else size
        data = self.blob.read(self.pos, count)
        self.pos += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        newline = self.blob.find(b"\n", self.pos)
        stop = self.blob.size if newline < 0 else newline + 1
        return self.read(stop - self.pos)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.blob.size}[whence]
        self.pos = max(base + offset, 0)
        return self.pos

    def tell(self) -> int:
        return self.pos


def detect_format(blob: Blob) -> str:
    """Name the format of ``blob`` from its first bytes (``unknown`` if none fits)."""
    head = blob.read(0, 512)
    if not head:
        return "empty"
    magic = _magic_format(head)
    if magic:
        return magic
    if is_tar_header(head):
        return "tar"  # ustar, GNU and old V7 headers (no magic): the checksum decides
    if _looks_like_safetensors(blob, head):
        return "safetensors"
    if head[0] == 0x80 and len(head) > 1 and head[1] <= 5:
        return "pickle"
    if head[0] == 0x08 and len(head) > 2 and head[2] in b"\x12\x1a\x22\x28\x32\x3a\x42":
        return "onnx"
    if head[0] in _PICKLE_OPCODES:
        return "pickle_candidate"  # protocol 0/1, or text that starts like one
    if _is_text(head[:512], partial=blob.size > 512):
        return "json" if head.lstrip()[:1] in (b"{", b"[") else "text"
    return "unknown"


def _magic_format(head: bytes) -> str | None:
    checks = (
        (b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"), (b"\x93NUMPY", "npy"),
        (b"\x89HDF\r\n\x1a\n", "hdf5"), (b"\x1f\x8b", "gzip"), (b"BZh", "bz2"),
        (b"\xfd7zXZ\x00", "xz"), (b"]\x00\x00", "lzma"), (b"\x04\x22\x4d\x18", "lz4"),
        (b"GGUF", "gguf"),
    )  # fmt: skip
    for prefix, name in checks:
        if head.startswith(prefix):
            return name
    if len(head) > 1 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0:
        return "zlib"
    return None


def is_tar_header(head: bytes) -> bool:
    """A tar header whose checksum is right (signed or unsigned sum, as tarfile accepts)."""
    if len(head) < 512 or not head[0]:
        return False
    try:
        stored = int(head[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    unsigned = sum(head[:148]) + 256 + sum(head[156:512])
    signed = unsigned - 256 * sum(b >= 128 for b in head[:148] + head[156:512])
    return stored in (unsigned, signed)


def _looks_like_safetensors(blob: Blob, head: bytes) -> bool:
    if len(head) < 10:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= blob.size - 8 and head[8:9] == b"{"


def _is_text(data: bytes, partial: bool = False) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return partial and err.start >= len(data) - 3 and err.reason == "unexpected end of data"
    return True


def check_text(blob: Blob) -> str | None:
    """Return why ``blob`` is not UTF-8 text, or None if it is."""
    decoder, step = codecs.getincrementaldecoder("utf-8")(), 1 << 24
    for offset in range(0, blob.size, step):
        chunk = blob.read(offset, step)
        try:
            decoder.decode(chunk, final=offset + step >= blob.size)
        except UnicodeDecodeError as err:
            return f"not UTF-8 text (byte {offset + max(err.start, 0)})"
        if b"\x00" in chunk:
            return f"binary data in a text-looking file (NUL near byte {offset})"
    return None


def check_safetensors(blob: Blob) -> str | None:
    """Validate a safetensors header; return the first problem, or None if valid."""
    (length,) = struct.unpack("<Q", blob.read(0, 8))
    if length > SAFETENSORS_MAX_HEADER:
        return f"header of {length} bytes exceeds the {SAFETENSORS_MAX_HEADER} byte limit"
    try:
        header = json.loads(blob.read(8, length))
    except (ValueError, UnicodeDecodeError) as err:
        return f"header is not valid JSON ({err})"
    if not isinstance(header, dict):
        return "header is not a JSON object"
    data_size, spans = blob.size - 8 - length, list[tuple[int, int, str]]()
    for name, info in header.items():
        problem = _check_tensor_entry(name, info, data_size, spans)
        if problem:
            return problem
    spans.sort()
    position = 0
    for begin, end, name in spans:
        if begin != position:
            return f"tensor {name!r}: data_offsets leave a gap or overlap at byte {begin}"
        position = end
    if position != data_size:
        return f"tensor data covers {position} of {data_size} bytes"
    return None


def _check_tensor_entry(name: str, info: Any, data_size: int, spans: list[Any]) -> str | None:
    if name == "__metadata__":
        ok = isinstance(info, dict) and all(isinstance(v, str) for v in info.values())
        return None if ok else "__metadata__ must map strings to strings"
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        return f"tensor {name!r}: expected exactly dtype, shape and data_offsets"
    bits = _SAFETENSORS_BITS.get(info["dtype"]) if isinstance(info["dtype"], str) else None
    shape, offsets = info["shape"], info["data_offsets"]
    if bits is None:
        return f"tensor {name!r}: unknown dtype {info['dtype']!r}"
    if not (isinstance(shape, list) and all(_is_count(d) for d in shape)):
        return f"tensor {name!r}: shape must be a list of non-negative integers"
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
        return f"tensor {name!r}: data_offsets must be two non-negative integers"
    begin, end = offsets
    nbits = math.prod(shape) * bits
    if nbits % 8 or end - begin != nbits // 8 or end > data_size:
        return f"tensor {name!r}: data_offsets {offsets} do not fit shape {shape} of {bits}-bit"
    spans.append((begin, end, name))
    return None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class NpyHeader:
    """The parsed header of a ``.npy`` array."""

    data_offset: int
    has_object: bool
    nbytes: int


def parse_npy_header(blob: Blob) -> NpyHeader:
    """Parse a ``.npy`` header; raise ValueError naming what is wrong."""
    import numpy as np

    major = blob.read(6, 1)[:1]
    if major not in (b"\x01", b"\x02", b"\x03"):
        raise ValueError(f"unsupported .npy version {major!r}")
    size_fmt, start = ("<H", 10) if major == b"\x01" else ("<I", 12)
    (hlen,) = struct.unpack(size_fmt, blob.read(8, start - 8).ljust(start - 8, b"\0"))
    if hlen > NPY_MAX_HEADER:
        raise ValueError(f".npy header of {hlen} bytes exceeds {NPY_MAX_HEADER}")
    text = blob.read(start, hlen).decode("utf-8" if major == b"\x03" else "latin-1")
    try:
        header = ast.literal_eval(text)
        dtype = np.lib.format.descr_to_dtype(header["descr"])
        count = math.prod(int(d) for d in header["shape"])
    except (ValueError, SyntaxError, KeyError, TypeError) as err:
        raise ValueError(f"malformed .npy header ({err})") from err
    return NpyHeader(start + hlen, bool(dtype.hasobject), count * dtype.itemsize)
