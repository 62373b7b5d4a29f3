"""Containers inside model files: compressed streams and zip archives.

:func:`decompress` inflates gzip/zlib/deflate/bz2/xz/lzma with a size limit; the zip reader
behaves like torch's (central directory first, else local headers walked by hand; local
headers read by hand, CRC and flag bits ignored so that they cannot hide a member from the
scan) and :func:`hidden_zip` finds an archive appended to another format.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

from mlsecops_provider.core.scan.formats import Blob


def decompress(blob: Blob, fmt: str, limit: int) -> bytes:
    """Decompress a gzip/zlib/bz2/xz/lzma stream, refusing output beyond ``limit`` bytes."""
    import bz2
    import lzma

    factories: dict[str, Any] = {
        "gzip": lambda: zlib.decompressobj(wbits=31),
        "zlib": zlib.decompressobj,
        "deflate": lambda: zlib.decompressobj(wbits=-15),
        "bz2": bz2.BZ2Decompressor,
        "xz": lzma.LZMADecompressor,
        "lzma": lzma.LZMADecompressor,
    }
    if fmt not in factories:
        raise ValueError(f"no decompressor for {fmt}")
    out, data = bytearray(), blob.tobytes()
    while data:
        engine = factories[fmt]()
        try:
            out += engine.decompress(data, limit + 1 - len(out))
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as err:
            raise ValueError(f"corrupt {fmt} stream ({err})") from err
        if len(out) > limit:
            raise ValueError(f"decompresses to more than {limit} bytes")
        if not engine.eof:
            raise ValueError(f"truncated {fmt} stream")
        data = engine.unused_data if fmt == "gzip" else b""
    return bytes(out)


@dataclass(frozen=True)
class ZipEntry:
    """One member as listed by the central directory (or a local header, as fallback)."""

    name: str
    header_offset: int
    compress_type: int
    compress_size: int
    file_size: int
    crc: int
    flag_bits: int


def zip_entries(blob: Blob) -> tuple[list[ZipEntry], str | None]:
    """List members from the central directory, else by walking local headers.

    The second value says why the central directory could not be used (None if it could).
    """
    try:
        with zipfile.ZipFile(blob.io()) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as err:
        return _walk_local_headers(blob), f"central directory unreadable ({err})"
    entries = [
        ZipEntry(i.filename, i.header_offset, i.compress_type, i.compress_size, i.file_size,
                 i.CRC, i.flag_bits)
        for i in infos
    ]  # fmt: skip
    return entries, None


_LOCAL = struct.Struct("<4s5H3L2H")


def hidden_zip(blob: Blob) -> bool:
    """True if a non-zip blob ends with a readable zip central directory (as zipfile sees it)."""
    if blob.find(b"PK\x05\x06", max(0, blob.size - 65557)) < 0:
        return False
    entries, problem = zip_entries(blob)
    return problem is None and bool(entries)


def _walk_local_headers(blob: Blob) -> list[ZipEntry]:
    entries, pos = [], blob.find(b"PK\x03\x04")
    while pos >= 0 and pos + _LOCAL.size <= blob.size:
        fields = _LOCAL.unpack(blob.read(pos, _LOCAL.size))
        _, _, flags, method, _, _, crc, csize, usize, nlen, xlen = fields
        name = blob.read(pos + _LOCAL.size, nlen).decode("utf-8", "replace")
        start = pos + _LOCAL.size + nlen + xlen
        if flags & 0x08 and csize == 0:  # sizes in a trailing data descriptor
            nxt = blob.find(b"PK\x03\x04", start)
            csize = (nxt if nxt >= 0 else blob.size) - start
            usize = csize if method == 0 else usize
        entries.append(ZipEntry(name, pos, method, csize, usize, crc, flags))
        pos = blob.find(b"PK\x03\x04", max(start + csize, pos + 4))
    return entries


def zip_member(blob: Blob, entry: ZipEntry, limit: int) -> tuple[Blob, str | None]:
    """The member's bytes as torch's reader sees them, plus a note if the local name differs.

    Stored members are a view of ``blob`` (no copy); deflate/bzip2 are decompressed.
    Raises ValueError if the local header is corrupt or the method is unsupported.
    """
    raw = blob.read(entry.header_offset, _LOCAL.size)
    if len(raw) < _LOCAL.size or raw[:4] != b"PK\x03\x04":
        raise ValueError(f"local header at byte {entry.header_offset} is corrupt")
    fields = _LOCAL.unpack(raw)
    nlen, xlen = fields[9], fields[10]
    local_name = blob.read(entry.header_offset + _LOCAL.size, nlen).decode("utf-8", "replace")
    note = None if local_name == entry.name else f"local header names it {local_name!r}"
    start = entry.header_offset + _LOCAL.size + nlen + xlen
    if start + entry.compress_size > blob.size:
        raise ValueError(f"member data runs past the end of the archive (byte {start})")
    data = blob.sub(start, start + entry.compress_size)
    if entry.compress_type == zipfile.ZIP_STORED:
        return data, note
    methods = {zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bz2"}
    if entry.compress_type not in methods:
        raise ValueError(f"unsupported compression method {entry.compress_type}")
    return Blob(decompress(data, methods[entry.compress_type], limit)), note
