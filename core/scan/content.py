"""Our content-based model scanner: every file, zip member, decompressed stream and ``.npy``
object array is recognised by its bytes (never its name) and checked by the matching validator.

Pickles go through :mod:`pickle_scan`; zips are read the way torch reads them; Keras and skops
configs are checked for code and for types outside the allowlist; anything unknown or
unparseable is an ``error`` finding (fail closed).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import stat
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsecops_provider.core.scan.containers import decompress, hidden_zip, zip_entries, zip_member
from mlsecops_provider.core.scan.formats import (
    ERROR,
    Blob,
    Finding,
    check_safetensors,
    check_text,
    detect_format,
    parse_npy_header,
)
from mlsecops_provider.core.scan.handlers import ExtraFormats
from mlsecops_provider.core.scan.keras import keras_findings, looks_like_config
from mlsecops_provider.core.scan.pickle.allowlist import DEFAULT_ALLOWLIST, Allowlist
from mlsecops_provider.core.scan.pickle.scanner import scan_pickles

COMPRESSED = ("gzip", "zlib", "bz2", "xz", "lzma")
JSON_CHECK_LIMIT = 64 << 20


@dataclass
class ScanOutcome:
    """What our scanner found under one root."""

    findings: list[Finding] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    validated: set[str] = field(default_factory=set)
    digests: dict[str, str] = field(default_factory=dict)
    bytes_total: int = 0
    vetted_getattr: set[str] = field(default_factory=set)  # files using getattr as vetted


class ContentScanner(ExtraFormats):
    """Dispatches each blob to the validator for the format its bytes show."""

    def __init__(
        self, allow: Allowlist = DEFAULT_ALLOWLIST, limit: int = 4 << 30, max_nesting: int = 4
    ) -> None:
        self.allow, self.limit, self.max_nesting = allow, limit, max_nesting
        self.out = ScanOutcome()
        self.paths: dict[str, Path] = {}  # source -> file on disk (scan_content only)
        self.inflated = 0
        self.companions: dict[str, str] = {}  # data files a validated model names -> format
        self.handlers: dict[str, Callable[[Blob, str, int], None]] = {
            "empty": lambda b, s, d: self.ok(s, "empty"),
            "zip": self.scan_zip, "npy": self.scan_npy, "pickle": self.scan_pickle,
            "pickle_candidate": self.scan_candidate, "safetensors": self.scan_safetensors,
            "json": self.scan_text, "text": self.scan_text, "hdf5": self.scan_hdf5,
            "onnx": self.scan_protobuf, "tar": self.scan_tar, "gguf": self.scan_gguf,
        }  # fmt: skip
        for name in COMPRESSED:
            self.handlers[name] = self.scan_compressed

    def inflate(self, size: int) -> None:
        """Count decompressed bytes against the limit for the whole scan (overlapping zip
        entries and many small bombs add up); raise ValueError past it."""
        self.inflated += size
        if self.inflated > self.limit:
            raise ValueError(f"decompressed data of the scan exceeds {self.limit} bytes in total")

    def ok(self, source: str, fmt: str) -> None:
        self.out.formats.setdefault(source, fmt)
        self.out.validated.add(source)

    def error(self, source: str, fmt: str, reason: str) -> None:
        self.out.formats.setdefault(source, fmt)
        self.out.findings.append(Finding(source, ERROR, reason))

    def flag(self, source: str, severity: str, reason: str, **extra: Any) -> None:
        self.out.findings.append(Finding(source, severity, reason, **extra))

    def scan_blob(self, blob: Blob, source: str, depth: int = 0, tensor: bool = False) -> None:
        fmt = detect_format(blob)
        if tensor:  # torch reads storages as raw bytes; only a real pickle there is a concern
            if fmt in ("pickle", "pickle_candidate"):
                return self.scan_candidate(blob, source, depth, tensor=True)
            return self.ok(source, "tensor_data")
        handler = self.handlers.get(fmt)
        if handler is None:
            return self.error(source, fmt, f"unrecognised or unsupported format ({fmt})")
        handler(blob, source, depth)
        if fmt != "zip" and depth < self.max_nesting and hidden_zip(blob):
            reason = f"a zip archive is hidden behind {fmt} data (polyglot or corrupt first entry)"
            self.flag(source, "high", reason)
            self.scan_zip(blob, source, depth)

    def scan_pickle(self, blob: Blob, source: str, depth: int, start: int = 0) -> None:
        report = scan_pickles(blob, source, start, self.allow)
        self.out.findings.extend(report.findings)
        if report.vetted_getattr:
            self.out.vetted_getattr.add(source.split(":")[0])
        self.ok(source, "torch_legacy" if report.tensor_data_from is not None else "pickle")

    def scan_candidate(self, blob: Blob, source: str, depth: int, tensor: bool = False) -> None:
        """Protocol 0/1 pickle, or text / raw tensor bytes that merely start like one."""
        report = scan_pickles(blob, source, 0, self.allow, lenient=True)
        if report.suspicious or report.complete:
            self.out.findings.extend(report.findings)
            if report.vetted_getattr:
                self.out.vetted_getattr.add(source.split(":")[0])
            return self.ok(source, "pickle")
        if tensor:
            return self.ok(source, "tensor_data")
        self.scan_text(blob, source, depth)

    def scan_text(self, blob: Blob, source: str, depth: int) -> None:
        problem = check_text(blob)
        if problem:
            return self.error(source, "unknown", f"unrecognised binary data: {problem}")
        is_json = blob.read(0, 64).lstrip()[:1] in (b"{", b"[")
        if is_json and blob.size <= JSON_CHECK_LIMIT:
            self.check_json_config(blob, source, "keras", strict=False)
        self.ok(source, "json" if is_json else "text")

    def scan_safetensors(self, blob: Blob, source: str, depth: int) -> None:
        problem = check_safetensors(blob)
        if problem:
            return self.error(source, "safetensors", f"invalid safetensors: {problem}")
        self.ok(source, "safetensors")

    def scan_npy(self, blob: Blob, source: str, depth: int) -> None:
        try:
            header = parse_npy_header(blob)
        except ValueError as err:
            return self.error(source, "npy", f"invalid .npy: {err}")
        if header.has_object:  # numpy pickles object arrays right after the header
            self.out.formats.setdefault(source, "npy")
            return self.scan_pickle(blob, source, depth, header.data_offset)
        data = blob.size - header.data_offset
        if data < header.nbytes:
            return self.error(source, "npy", f"truncated .npy: {data} of {header.nbytes} bytes")
        if data > header.nbytes:
            extra, at = data - header.nbytes, header.data_offset + header.nbytes
            self.flag(source, "medium", f"{extra} bytes follow the array data", offset=at)
        self.ok(source, "npy")

    def scan_compressed(self, blob: Blob, source: str, depth: int) -> None:
        fmt = detect_format(blob)
        if depth >= self.max_nesting:
            return self.error(source, fmt, f"{fmt} nested deeper than {self.max_nesting}")
        try:
            inner = Blob(decompress(blob, fmt, self.limit))
            self.inflate(inner.size)
        except ValueError as err:
            if fmt == "zlib" and check_text(blob) is None:  # text that starts like 'x^'
                return self.ok(source, "text")
            return self.error(source, fmt, f"cannot decompress: {err}")
        self.scan_blob(inner, source, depth + 1)
        self.out.formats[source] = f"{fmt}>{self.out.formats.get(source, '?')}"

    def scan_zip(self, blob: Blob, source: str, depth: int) -> None:
        if depth >= self.max_nesting:
            return self.error(source, "zip", f"zip nested deeper than {self.max_nesting}")
        entries, problem = zip_entries(blob)
        if problem:
            self.flag(source, "high", f"{problem}; members found by walking local headers")
        names = [e.name for e in entries]
        for name, count in sorted(Counter(names).items()):
            if count > 1:
                self.flag(f"{source}:{name}", "high", f"zip lists this member {count} times")
        storage = tuple(n[:-8] + "data/" for n in names if n.rsplit("/", 1)[-1] == "data.pkl")
        kind = _zip_kind(set(names), storage)
        for entry in entries:
            if not (entry.name.endswith("/") and entry.file_size == 0):
                self.scan_member(blob, source, entry, depth, storage, kind)
        self.ok(source, kind)

    def scan_member(self, blob: Blob, source: str, entry: Any, depth: int, storage: tuple[str, ...],
                    kind: str) -> None:  # fmt: skip
        member = f"{source}:{entry.name}"
        if entry.flag_bits & 0x41:
            self.flag(member, "high", "encryption flag set: zipfile refuses it, torch reads it")
        try:
            data, note = zip_member(blob, entry, self.limit)
            if entry.compress_type:
                self.inflate(data.size)
        except ValueError as err:
            return self.error(member, "zip member", f"cannot read member: {err}")
        if note:
            self.flag(member, "high", f"central directory and local header disagree: {note}")
        tensor = entry.name.startswith(storage) if storage else False
        if not tensor and data.crc32() != entry.crc:
            self.flag(member, "high", "CRC-32 mismatch: zipfile refuses it, torch ignores CRCs")
        self.scan_blob(data, member, depth + 1, tensor)
        if kind == "skops" and entry.name == "schema.json":
            self.check_json_config(data, member, kind)

    def check_json_config(self, blob: Blob, source: str, kind: str, strict: bool = True) -> None:
        """Skops schemas, and Keras model configs (any JSON shaped like one when not strict)."""
        try:
            config = json.loads(blob.tobytes())
        except RecursionError:
            return self.error(source, kind, f"{kind} JSON nested too deeply to check")
        except ValueError as err:
            if strict:
                self.error(source, kind, f"{kind} config is not valid JSON ({err})")
            return
        if kind == "skops":
            self.out.findings.extend(self.skops_findings(config, source))
        elif strict or looks_like_config(config):
            self.out.findings.extend(keras_findings(config, source, self.scan_payload))

    def scan_payload(self, data: bytes, source: str) -> None:
        """Scan bytes embedded in a config (a Keras TorchModuleWrapper's torch.save payload)."""
        self.scan_blob(Blob(data), source, self.max_nesting - 1)

    def skops_findings(self, schema: Any, source: str) -> list[Finding]:
        found = []
        for node in _walk(schema):
            module, name = node.get("__module__"), node.get("__class__")
            if isinstance(module, str) and isinstance(name, str):
                severity, reason = self.allow.classify(module, name)
                if severity:
                    found.append(Finding(source, severity, f"skops type: {reason}",
                                         global_name=f"{module}.{name}"))  # fmt: skip
        return list({(f.global_name, f.reason): f for f in found}.values())

    def scan_hdf5(self, blob: Blob, source: str, depth: int) -> None:
        try:
            import h5py
        except ImportError:
            reason = "HDF5 file, but h5py is not installed: cannot check it for Keras Lambda layers"
            return self.error(source, "hdf5", reason)
        import io

        try:
            with h5py.File(io.BytesIO(blob.tobytes()), "r") as handle:
                raw = handle.attrs.get("model_config")
        except (OSError, ValueError) as err:
            return self.error(source, "hdf5", f"cannot open HDF5 ({err})")
        if raw is not None:
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            self.check_json_config(Blob(text.encode()), source, "keras")
        self.ok(source, "hdf5")

    def scan_onnx(self, blob: Blob, source: str, depth: int) -> None:
        try:
            from mlsecops_provider.core.scan.onnx_check import check_onnx
        except ImportError:
            reason = "protobuf model (ONNX?), but onnx is not installed to validate it"
            return self.error(source, "onnx", reason)
        on_disk = self.paths.get(source) if depth == 0 else None
        report = check_onnx(blob.tobytes(), on_disk, source)
        if report.error:
            return self.error(source, "onnx", report.error)
        for problem in report.problems:
            self.flag(source, "high", problem)
        self.companions.update(dict.fromkeys(report.external_files, "onnx_external_data"))
        self.ok(source, "onnx")


def _zip_kind(names: set[str], storage: tuple[str, ...]) -> str:
    if "config.json" in names and ({"metadata.json", "model.weights.h5"} & names):
        return "keras"
    if "schema.json" in names:
        return "skops"
    return "torch" if storage else "zip"


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# --- files and directories ------------------------------------------------------------------
@contextmanager
def _mapped(path: Path) -> Iterator[Blob]:
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            yield Blob(b"")
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield Blob(mapped)


def _files(root: Path) -> Iterator[tuple[Path, str]]:
    if root.is_file():
        yield root, root.name
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]):
            path = Path(dirpath, name)
            yield path, path.relative_to(root).as_posix()


def scan_content(root: Path, scanner: ContentScanner, digest: bool = True) -> ScanOutcome:
    """Run our scanner on a file or on every file under a directory (symlinks not followed)."""
    for path, source in _files(root):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            scanner.flag(source, "high", f"symlink to {os.readlink(path)!r} is not followed")
            continue
        if not stat.S_ISREG(mode):
            scanner.error(source, "special", "not a regular file")
            continue
        scanner.paths[source] = path
        try:
            with _mapped(path) as blob:
                scanner.out.bytes_total += blob.size
                if digest:
                    scanner.out.digests[source] = hashlib.sha256(blob.base).hexdigest()
                scanner.scan_blob(blob, source)
        except OSError as err:
            scanner.error(source, "unreadable", f"cannot read ({err.strerror})")
    scanner.accept_companions(lambda source: scanner.paths[source].read_bytes())
    return scanner.out


def scan_bytes(data: bytes, name: str, scanner: ContentScanner) -> ScanOutcome:
    """Run our scanner on bytes already in memory (what :mod:`safe_load` then loads)."""
    scanner.out.bytes_total = len(data)
    scanner.out.digests[name] = hashlib.sha256(data).hexdigest()
    scanner.scan_blob(Blob(data), name)
    return scanner.out
