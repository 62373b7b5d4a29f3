"""GGUF (llama.cpp) models: the header, metadata and tensor table are validated against the
file's size, and chat templates (``tokenizer.chat_template*``, Jinja programs run by the
serving stack) are parsed with Jinja's sandbox and flagged when they reach attributes or
calls outside it.

A chat template may loop, branch, index messages and call the few helpers serving stacks
provide (``raise_exception``, ``strftime_now``, ``namespace``, string methods such as
``strip``); it may not touch underscore attributes (``__class__``, ``__globals__``, ...), the
names the sandbox treats as unsafe, or call anything else (CVE-2024-34359, "Llama Drama":
server-side template injection through a GGUF chat template).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mlsecops_provider.core.scan.formats import Blob

MAGIC = b"GGUF"
MAX_KEYS = 1 << 20
MAX_STRING = 64 << 20
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
            11: "<q", 12: "<d"}  # fmt: skip
GGML_TYPES = {  # type id -> (elements per block, bytes per block)
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176),
    14: (256, 210), 15: (256, 292), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8),
    28: (1, 8), 30: (1, 2),
}  # fmt: skip
SAFE_CALLS = frozenset(
    [
        "raise_exception",
        "strftime_now",
        "namespace",
        "range",
        "dict",
        "list",
        "lipsum",
        "cycler",
        "joiner",
    ]
)
SAFE_METHODS = frozenset(
    [
        "strip",
        "lstrip",
        "rstrip",
        "split",
        "rsplit",
        "splitlines",
        "upper",
        "lower",
        "title",
        "capitalize",
        "startswith",
        "endswith",
        "replace",
        "join",
        "items",
        "keys",
        "values",
        "get",
        "count",
        "find",
        "rfind",
        "index",
        "isdigit",
        "isalpha",
        "isspace",
        "cycle",
    ]
)


class GGUFError(ValueError):
    """The file is not a well-formed GGUF."""


@dataclass
class GGUFInfo:
    """What reading the header found."""

    version: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class _Reader:
    def __init__(self, blob: Blob) -> None:
        self.blob, self.pos = blob, 0

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = self.blob.read(self.pos, size)
        if len(data) != size:
            raise GGUFError(f"truncated at byte {self.pos}")
        self.pos += size
        return struct.unpack(fmt, data)[0]

    def string(self) -> str:
        length = self.unpack("<Q")
        if length > min(MAX_STRING, self.blob.size - self.pos):
            raise GGUFError(f"string of {length} bytes at byte {self.pos} runs past the end")
        data = self.blob.read(self.pos, length)
        self.pos += length
        return data.decode("utf-8", "replace")

    def value(self, kind: int, depth: int = 0) -> Any:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == 8:
            return self.string()
        if kind == 9 and depth < 4:
            inner, count = self.unpack("<I"), self.unpack("<Q")
            if count > self.blob.size - self.pos:
                raise GGUFError(f"array of {count} items runs past the end")
            return [self.value(inner, depth + 1) for _ in range(count)]
        raise GGUFError(f"unknown metadata value type {kind}")


def read_gguf(blob: Blob) -> GGUFInfo:
    """Parse and bound-check a GGUF header; raise GGUFError if it is malformed."""
    reader, info = _Reader(blob), GGUFInfo()
    if blob.read(0, 4) != MAGIC:
        raise GGUFError("no GGUF magic")
    reader.pos = 4
    info.version = reader.unpack("<I")
    if info.version not in (2, 3):
        raise GGUFError(f"unsupported GGUF version {info.version}")
    tensors, keys = reader.unpack("<Q"), reader.unpack("<Q")
    if keys > MAX_KEYS or tensors > blob.size:
        raise GGUFError(f"{keys} metadata keys / {tensors} tensors exceed the file")
    for _ in range(keys):
        key = reader.string()
        info.metadata[key] = reader.value(reader.unpack("<I"))
    table = [_tensor_info(reader) for _ in range(tensors)]
    alignment = info.metadata.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise GGUFError(f"general.alignment {alignment!r} is not a power of two")
    start = -(-reader.pos // alignment) * alignment
    for name, nbytes, offset in table:
        if offset % alignment or start + offset + max(nbytes, 0) > blob.size:
            info.problems.append(f"tensor {name!r} at offset {offset} runs past the file")
    return info


def _tensor_info(reader: _Reader) -> tuple[str, int, int]:
    name, ndim = reader.string(), reader.unpack("<I")
    if ndim > 8:
        raise GGUFError(f"tensor {name!r} has {ndim} dimensions")
    count = 1
    for _ in range(ndim):
        count *= reader.unpack("<Q")
    kind, offset = reader.unpack("<I"), reader.unpack("<Q")
    block = GGML_TYPES.get(kind)
    nbytes = -(-count // block[0]) * block[1] if block else 0
    return name, nbytes, offset


def chat_templates(info: GGUFInfo) -> Iterator[tuple[str, Any]]:
    for key, value in info.metadata.items():
        if key.startswith("tokenizer.chat_template"):
            yield key, value


def template_problems(template: Any) -> list[str]:
    """Why a chat template reaches outside Jinja's sandbox (empty if it does not)."""
    from jinja2 import nodes
    from jinja2.exceptions import TemplateSyntaxError
    from jinja2.sandbox import (
        UNSAFE_FUNCTION_ATTRIBUTES,
        UNSAFE_METHOD_ATTRIBUTES,
        ImmutableSandboxedEnvironment,
    )

    if not isinstance(template, str):
        return ["chat template is not a string"]
    env = ImmutableSandboxedEnvironment()
    try:
        tree = env.parse(template)
    except TemplateSyntaxError as err:
        return [f"chat template does not parse ({err.message})"]
    except RecursionError:
        return ["chat template nested too deeply to check"]
    unsafe = set(UNSAFE_FUNCTION_ATTRIBUTES) | set(UNSAFE_METHOD_ATTRIBUTES) | {"mro", "format"}
    found: list[str] = []
    for filtered in tree.find_all(nodes.Filter):
        args = [*filtered.args, *(k.value for k in filtered.kwargs)]
        names = [a.value for a in args if isinstance(a, nodes.Const) and isinstance(a.value, str)]
        if filtered.name == "attr" or any(n.startswith("_") or n in unsafe for n in names):
            found.append(f"chat template filter {filtered.name!r} reaches attributes by name")
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Call)):
        attr = _attribute(node)
        if attr is not None and (attr.startswith("_") or attr in unsafe):
            found.append(f"chat template reaches attribute {attr!r}")
        if isinstance(node, nodes.Call) and not _safe_call(node):
            found.append(f"chat template calls {_callee(node)}")
    return sorted(set(found))


def _attribute(node: Any) -> str | None:
    from jinja2 import nodes

    if isinstance(node, nodes.Getattr):
        return str(node.attr)
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return node.arg.value if isinstance(node.arg.value, str) else None
    return None


def _safe_call(node: Any) -> bool:
    from jinja2 import nodes

    if isinstance(node.node, nodes.Name):
        return node.node.name in SAFE_CALLS
    if isinstance(node.node, nodes.Getattr):
        return node.node.attr in SAFE_METHODS
    return False


def _callee(node: Any) -> str:
    from jinja2 import nodes

    if isinstance(node.node, nodes.Name):
        return repr(node.node.name)
    if isinstance(node.node, nodes.Getattr):
        return f"method {node.node.attr!r}"
    return "a computed value"
