"""GGUF (llama.cpp) models: the header, metadata and tensor table are validated against the
file's size, and chat templates (``tokenizer.chat_template*``, Jinja programs run by the
serving stack) are parsed with Jinja's sandbox and flagged when they reach attributes or
calls outside it.

A chat template may loop, branch, index messages and call the few helpers serving stacks
provide (``raise_exception``, ``strftime_now``, ``namespace``, string methods such as
``strip``); it may not touch underscore attributes (``__class__``, ``__globals__``, ...), the
names the sandbox treats as unsafe, or call anything else (CVE-2024-34359, "Llama Drama":
server-side template injection through a GGUF chat template). An index whose key is a string
the template builds itself (``|join``, ``|format``, ``~``, bound by ``set`` or by a loop
over literals) cannot be checked and is a finding; keys read from the data are not.
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
_METHODS = (
    "strip lstrip rstrip split rsplit splitlines upper lower title capitalize startswith "
    "endswith replace join items keys values get count find rfind index isdigit isalpha "
    "isspace isupper islower isalnum isnumeric istitle zfill ljust rjust center partition "
    "rpartition casefold swapcase removeprefix removesuffix cycle"
)
_FILTERS = "attr map selectattr rejectattr sort groupby sum unique min max dictsort"
SAFE_METHODS = frozenset(_METHODS.split())
ATTRIBUTE_FILTERS = frozenset(_FILTERS.split())


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
    consts = _constants(tree)
    found: list[str] = []

    def bad(name: str | None) -> bool:
        return name is not None and (name.startswith("_") or name in unsafe)

    built = _StringBuilt(tree, consts, bad)

    for filtered in tree.find_all(nodes.Filter):
        if filtered.name not in ATTRIBUTE_FILTERS:
            continue
        named = [*filtered.args, *(k.value for k in filtered.kwargs if k.key == "attribute")]
        texts = [_text(a, consts) for a in named]
        computed = any(
            t is None and (filtered.name == "attr" or built(a))
            for a, t in zip(named, texts, strict=True)
        )
        if computed or any(bad(t) for t in texts):
            found.append(f"chat template filter {filtered.name!r} reaches attributes by name")
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Call)):
        attr = str(node.attr) if isinstance(node, nodes.Getattr) else None
        if isinstance(node, nodes.Getitem):
            attr = _text(node.arg, consts)
        if bad(attr):
            found.append(f"chat template reaches attribute {attr!r}")
        elif isinstance(node, nodes.Getitem) and attr is None and built(node.arg):
            found.append("chat template indexes with a string it builds (cannot be checked)")
        if isinstance(node, nodes.Call) and not _safe_call(node):
            found.append(f"chat template calls {_callee(node)}")
    return sorted(set(found))


class _StringBuilt:
    """Is an expression a string the template builds itself (``['__cla','ss__']|join``,
    ``'%c'|format(95) ~ ...``, a ``set`` of such, a loop over literals that are)? Data read
    from the context (``message['role']``, ``loop.index0``) is not."""

    def __init__(self, tree: Any, consts: dict[str, str], bad: Any) -> None:
        from jinja2 import nodes

        self.nodes, self.consts, self.bad = nodes, consts, bad
        self.bound: dict[str, list[Any]] = {}
        for assign in tree.find_all(nodes.Assign):
            if isinstance(assign.target, nodes.Name):
                self.bound.setdefault(assign.target.name, []).append(assign.node)
        for loop in tree.find_all(nodes.For):
            items = loop.iter.items if isinstance(loop.iter, (nodes.List, nodes.Tuple)) else []
            targets = [loop.target, *loop.target.find_all(nodes.Name)] if items else []
            for target in (t for t in targets if isinstance(t, nodes.Name)):
                self.bound.setdefault(target.name, []).extend(items)

    def __call__(self, node: Any, depth: int = 0) -> bool:
        n = self.nodes
        if depth > 20:
            return True
        if isinstance(node, n.Const):
            return isinstance(node.value, str) and self.bad(node.value)
        if isinstance(node, (n.Filter, n.Concat)):
            return True
        if isinstance(node, n.Call):
            return isinstance(node.node, n.Getattr) and node.node.attr in _STRING_METHODS
        if isinstance(node, (n.Add, n.Mul)):
            return any(self(side, depth + 1) or _is_str(side) for side in (node.left, node.right))
        if isinstance(node, n.Name):
            if node.name in self.consts:
                return self.bad(self.consts[node.name])
            return any(self(value, depth + 1) for value in self.bound.get(node.name, []))
        return False


_STRING_METHODS = frozenset(["join", "format", "replace", "lower", "upper", "strip", "title"])


def _is_str(node: Any) -> bool:
    from jinja2 import nodes

    return isinstance(node, nodes.Const) and isinstance(node.value, str)


def _constants(tree: Any) -> dict[str, str]:
    """Template variables set to constant strings (``{% set a = '__cl' ~ 'ass__' %}``)."""
    from jinja2 import nodes

    consts: dict[str, str] = {}
    for _ in range(2):
        for assign in tree.find_all(nodes.Assign):
            value = _text(assign.node, consts)
            if isinstance(assign.target, nodes.Name) and value is not None:
                consts[assign.target.name] = value
    return consts


def _text(node: Any, consts: dict[str, str], depth: int = 0) -> str | None:
    """The string a constant expression evaluates to (None if it is not constant)."""
    from jinja2 import nodes

    if depth > 50:
        return None
    if isinstance(node, nodes.Const):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, nodes.Name):
        return consts.get(node.name)
    if isinstance(node, nodes.Concat):
        parts = [_text(n, consts, depth + 1) for n in node.nodes]
        return None if None in parts else "".join(p for p in parts if p is not None)
    if isinstance(node, nodes.Add):
        left, right = _text(node.left, consts, depth + 1), _text(node.right, consts, depth + 1)
        return left + right if left is not None and right is not None else None
    if isinstance(node, nodes.Mul):
        for text_node, count in ((node.left, node.right), (node.right, node.left)):
            text = _text(text_node, consts, depth + 1)
            if text is not None and isinstance(count, nodes.Const) and isinstance(count.value, int):
                return text * min(count.value, 64)
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
