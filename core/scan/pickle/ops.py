"""Pickle opcode semantics for the scanner, after CPython's ``pickle.py`` ``load_*`` methods.

Each handler reads its argument exactly as the real unpickler does and applies the opcode to
the scanner's stack of modelled values (:class:`Global`, :class:`Obj`, :class:`Opaque`), so
that the two parsers cannot disagree about where a pickle breaks or what it imports.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlsecops_provider.core.scan.pickle.scanner import Machine

Handler = Callable[["Machine"], Any]
DISPATCH: dict[int, Handler] = {}


@dataclass(frozen=True)
class Global:
    """A global the pickle imports: ``module.name``."""

    module: str
    name: str

    @property
    def full(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True, eq=False)
class Gated(Global):
    """``builtins.getattr``, allowed only for the method reconstructors (see gadgets)."""


class Obj:
    """The result of calling or instantiating something while unpickling."""

    __slots__ = ("func", "args", "state")

    def __init__(self, func: Global | None, args: Any) -> None:
        self.func, self.args, self.state = func, args, None


class Opaque:
    """A value the scanner does not model (large bytes, buffers, persistent objects)."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what


class Broken(Exception):
    """The pickle cannot be parsed further (the real unpickler would stop here too)."""


def _may_be_str(value: Any) -> bool:
    """Could this modelled value be a ``str`` at load time (a literal, or a call's result)?"""
    if isinstance(value, (str, Opaque)):
        return True
    func = value.func if isinstance(value, Obj) else False
    return func is None or (isinstance(func, Global) and not func.name[:1].isupper())


def describe(value: Any) -> str:
    if isinstance(value, Global):
        return value.full
    if isinstance(value, Obj):
        return f"<result of {value.func.full if value.func else 'a computed call'}>"
    return f"<{type(value).__name__}>" if not isinstance(value, Opaque) else f"<{value.what}>"


def _op(codes: bytes) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        for code in codes:
            DISPATCH[code] = func
        return func

    return register


OPNAMES: dict[int, str] = {}  # opcode byte -> pickletools name


def _build_opnames() -> None:
    import pickletools

    for op in pickletools.opcodes:
        OPNAMES[op.code.encode("latin-1")[0]] = op.name


_build_opnames()


# --- opcode handlers (semantics of CPython's pickle.py load_* methods) ------------------------
_SIZED = {
    b"T": ("<i", "ascii"), b"U": ("<B", "ascii"), b"B": ("<I", "bytes"), b"C": ("<B", "bytes"),
    b"\x8e": ("<Q", "bytes"), b"\x96": ("<Q", "bytes"), b"\x8c": ("<B", "str"),
    b"X": ("<I", "str"), b"\x8d": ("<Q", "str"),
}  # fmt: skip
_INDEX = {ord("h"): "<B", ord("j"): "<I", ord("q"): "<B", ord("r"): "<I"}


def _pairs(items: list[Any]) -> dict[Any, Any]:
    return {items[i]: items[i + 1] for i in range(0, len(items), 2)}


def _register_simple() -> None:
    table: dict[bytes, Handler] = {
        b"N": lambda m: m.push(None), b"\x88": lambda m: m.push(True),
        b"\x89": lambda m: m.push(False), b"]": lambda m: m.push([]),
        b")": lambda m: m.push(()), b"}": lambda m: m.push({}), b"\x8f": lambda m: m.push([]),
        b"J": lambda m: m.push(m.unpack("<i")), b"K": lambda m: m.push(m.unpack("<B")),
        b"M": lambda m: m.push(m.unpack("<H")), b"G": lambda m: m.push(m.unpack(">d")),
        b"F": lambda m: m.push(float(m.line())), b"\x95": lambda m: m.take(8),
        b"V": lambda m: m.push(m.line().decode("raw-unicode-escape")),
        b"\x97": lambda m: m.push(Opaque("out-of-band buffer")), b"\x98": lambda m: m.stack[-1],
        b"(": lambda m: m.mark(), b"1": lambda m: m.pop_mark(), b"2": lambda m: m.push(m.stack[-1]),
        b"0": lambda m: m.stack.pop() if m.stack else m.pop_mark(),
        b"d": lambda m: m.push(_pairs(m.pop_mark())),
        b"b": lambda m: m.build(m.stack.pop()),
        b"P": lambda m: m.persistent(m.line().decode("ascii")),
        b"Q": lambda m: m.persistent(m.stack.pop()),
        b"g": lambda m: m.get(int(m.line())), b"h": lambda m: m.get(m.unpack("<B")),
        b"j": lambda m: m.get(m.unpack("<I")),
    }  # fmt: skip
    for code, func in table.items():
        DISPATCH[code[0]] = func
    for code, (fmt, kind) in _SIZED.items():
        DISPATCH[code[0]] = _sized_handler(fmt, kind)


def _sized_handler(fmt: str, kind: str) -> Handler:
    return lambda m: m.push(m.sized(fmt, kind))


_register_simple()


@_op(b"\x80ILS\x8a\x8b")
def _number_or_string(m: Machine) -> None:
    if m.code == 0x80:
        m.proto = m.take(1)[0]
        if m.proto > 5:
            raise Broken("unsupported pickle protocol")
        return
    if m.code in (0x8A, 0x8B):
        count = m.take(1)[0] if m.code == 0x8A else m.unpack("<i")
        m.push(int.from_bytes(m.take(count), "little", signed=True))
        return
    data = m.line()
    if m.code == ord("S"):
        if len(data) < 2 or data[0] != data[-1] or data[:1] not in (b"'", b'"'):
            raise Broken("the STRING opcode argument must be quoted")
        m.push(codecs.escape_decode(data[1:-1])[0].decode("ascii"))
    elif m.code == ord("I") and data in (b"00", b"01"):
        m.push(data == b"01")
    else:
        m.push(int(data[:-1] if m.code == ord("L") and data.endswith(b"L") else data, 0))


@_op(b"t\x85\x86\x87l\x91")
def _sequence(m: Machine) -> None:
    count = {0x85: 1, 0x86: 2, 0x87: 3}.get(m.code)
    if count is None:
        items = m.pop_mark()
    else:
        items, m.stack[-count:] = m.stack[-count:], []
        if len(items) != count:
            raise Broken("stack underflow")
    m.push(list(items) if m.code == ord("l") else tuple(items))


@_op(b"aesu\x90")
def _fill(m: Machine) -> None:
    if m.code == ord("a"):
        items = [m.stack.pop()]
    elif m.code == ord("s"):
        value, key = m.stack.pop(), m.stack.pop()
        items = [key, value]
    else:
        items = m.pop_mark()
    target = m.stack[-1]
    if isinstance(target, Global):
        m.flag(target.full, "high", f"{m.opname} calls a method of the global {target.full}")
    if not isinstance(target, (list, dict)) and any(isinstance(i, Gated) for i in items):
        reason = f"builtins.getattr is passed to {describe(target)} by {m.opname}"
        m.flag("builtins.getattr", "critical", reason)  # append/extend/__setitem__ is a call
    if isinstance(target, list):
        target.extend(items)
    elif isinstance(target, dict) and m.code in (ord("s"), ord("u")):
        target.update(_pairs(items))


@_op(b"pqr\x94")
def _put(m: Machine) -> None:
    if m.code == 0x94:
        key = len(m.memo)
    else:
        key = int(m.line()) if m.code == ord("p") else m.unpack(_INDEX[m.code])
    if key < 0:
        raise Broken("negative memo key")
    m.memo[key] = m.stack[-1]


@_op(b"\x82\x83\x84")
def _ext(m: Machine) -> None:
    code = m.unpack({0x82: "<B", 0x83: "<H", 0x84: "<i"}[m.code])
    m.flag(f"<extension {code}>", "high", f"extension code {code} names a global via copyreg")
    m.push(Opaque("extension global"))


@_op(b"ci\x93")
def _global(m: Machine) -> None:
    if m.code == 0x93:
        name, module = m.stack.pop(), m.stack.pop()
        if not (isinstance(module, str) and isinstance(name, str)):
            if not (_may_be_str(module) and _may_be_str(name)):
                raise Broken("STACK_GLOBAL needs two strings")  # the unpickler raises too
            subject = f"{describe(module)}.{describe(name)}"
            m.flag(subject, "critical", "STACK_GLOBAL on values computed while unpickling")
            m.push(Opaque("computed global"))
            return
    else:
        module, name = m.line().decode("utf-8"), m.line().decode("utf-8")
    found = m.load_global(module, name)
    m.push(m.call(found, tuple(m.pop_mark())) if m.code == ord("i") else found)


@_op(b"R\x81\x92o")
def _call(m: Machine) -> None:
    if m.code == ord("o"):
        items = m.pop_mark()
        func, args = items[0], tuple(items[1:])
    else:
        if m.code == 0x92:  # NEWOBJ_EX: kwargs are arguments too
            kwargs = m.stack.pop()
            values = kwargs.values() if isinstance(kwargs, dict) else ()
            if any(isinstance(v, Gated) for v in values):
                m.flag("builtins.getattr", "critical", "builtins.getattr is passed as a keyword")
        args = m.stack.pop()
        func = m.stack.pop()
    m.push(m.call(func, args))
