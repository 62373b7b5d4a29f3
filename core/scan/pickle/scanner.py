"""Our pickle scanner: simulates the unpickler's stack on the raw bytes, executing nothing.

Every global a pickle imports (``GLOBAL``, ``INST``, ``STACK_GLOBAL`` whose strings came from
any string opcode or the memo) is checked against an allowlist of what legitimate numpy,
scikit-learn, scipy, pandas, torch and joblib models need and a denylist of what runs code.
Stacked pickles are scanned to the end; a pickle that breaks keeps the findings made before
the break and the break is a finding of its own. joblib's inline arrays are skipped by size.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

from mlsecops_provider.core.scan.formats import Blob, Finding
from mlsecops_provider.core.scan.pickle.allowlist import (
    DEFAULT_ALLOWLIST,
    JOBLIB_WRAPPER,
    RESOLVERS,
    Allowlist,
    is_valid_global,
    normalise,
)
from mlsecops_provider.core.scan.pickle.gadgets import (
    CALLABLE_ARGUMENT,
    GETATTR,
    METHOD_RECONSTRUCTORS,
    UnknownDtype,
    allocation_problem,
    computed_state,
    constructor_problem,
    real_dtype,
    smuggled_keys,
    state_callables,
    state_problem,
)
from mlsecops_provider.core.scan.pickle.ops import (
    DISPATCH,
    OPNAMES,
    Broken,
    Gated,
    Global,
    Obj,
    Opaque,
    describe,
)

TORCH_MAGIC = 0x1950A86A20F9469CFC6C
BIG_ARGUMENT = 1 << 16
_INSTANTIATORS = frozenset(
    {"copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__"}
)
PLAIN_VIEW_BUDGET = 1_000_000  # opcodes; real array bytes never parse this far
_STRUCTS: dict[str, struct.Struct] = {}


class Machine:
    """Runs one pickle (up to its STOP) over a stack of modelled values."""

    def __init__(
        self, blob: Blob, source: str, pos: int, allow: Allowlist, lenient: bool,
        joblib: bool = True, budget: int = 1 << 62,
    ) -> None:  # fmt: skip
        self.blob, self.source, self.allow, self.lenient = blob, source, allow, lenient
        self.joblib, self.budget, self.arrays = joblib, budget, 0
        self.buf, self.start, self.limit = blob.base, blob.start, blob.end
        self.p = blob.start + pos  # absolute read position in ``buf``
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.findings: dict[tuple[str, str], Finding] = {}
        self.pos = pos
        self.code = 0
        self.opcodes = self.calls = self.globals = self.denied = self.proto = 0
        self.gated = False  # builtins.getattr was named: it must only be consumed at once
        self.vetted = 0  # getattr calls that were method reconstructors
        self.complete, self.root, self.error = False, None, ""
        self.persistent_ids: list[Any] = []
        self.imported: dict[str, tuple[str, str]] = {}  # flagged global -> its finding key

    def run(self) -> Machine:
        try:
            self._loop()
        except Broken as err:
            self.error = str(err)
        except (IndexError, KeyError, ValueError, TypeError, struct.error, OverflowError) as err:
            self.error = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        except RecursionError:
            self.error = "nesting too deep"
        if self.gated and not self.complete:
            self.flag(GETATTR, "critical", f"{GETATTR} in a pickle that does not complete")
        return self

    def _loop(self) -> None:
        buf, limit, start, dispatch = self.buf, self.limit, self.start, DISPATCH
        while True:
            p = self.p
            if p >= limit:
                raise Broken("the data ends before the STOP opcode")
            self.pos, self.code, self.p = p - start, buf[p], p + 1
            if self.code == 0x2E:  # STOP
                self.root, self.complete = self.stack.pop(), True
                if self.gated and _reaches_gated(self.root):
                    self.flag(GETATTR, "critical", f"{GETATTR} is kept in the unpickled object")
                return
            handler = dispatch.get(self.code)
            if handler is None:
                raise Broken(f"invalid opcode 0x{self.code:02x}")
            handler(self)
            self.opcodes += 1
            if self.opcodes >= self.budget:
                raise Broken(f"still parsing after {self.budget} opcodes")

    @property
    def end(self) -> int:
        return self.p - self.start

    def skip(self, count: int) -> None:
        if count < 0 or count > self.limit - self.p:
            raise Broken(f"{count} bytes of data run past the end")
        self.p += count

    @property
    def opname(self) -> str:
        return OPNAMES.get(self.code, f"0x{self.code:02x}")

    def flag(self, subject: str | None, severity: str, reason: str) -> None:
        key = (subject or "", reason)
        if key not in self.findings:
            self.findings[key] = Finding(
                self.source, severity, reason, self.pos, self.opname, subject
            )

    # --- reading arguments, mirroring CPython's unpickler ---------------------------------
    def take(self, count: int) -> bytes:
        p = self.p
        self.skip(count)
        return bytes(self.buf[p : self.p])

    def line(self) -> bytes:
        """``readline()[:-1]``, as pickle.py reads text arguments (even without a newline)."""
        newline = self.buf.find(b"\n", self.p, self.limit)
        stop = self.limit if newline < 0 else newline + 1
        data = self.take(stop - self.p)
        if not data:
            raise Broken("text argument missing at the end of the data")
        return data[:-1]

    def unpack(self, fmt: str) -> Any:
        layout = _STRUCTS.get(fmt) or _STRUCTS.setdefault(fmt, struct.Struct(fmt))
        p = self.p
        self.skip(layout.size)
        return layout.unpack_from(self.buf, p)[0]

    def sized(self, fmt: str, kind: str) -> Any:
        count = self.unpack(fmt)
        if count > BIG_ARGUMENT:
            self.skip(count)
            return Opaque(f"{count} bytes")
        data = self.take(count)
        if kind == "str":
            return data.decode("utf-8", "surrogatepass")
        return data.decode("ascii") if kind == "ascii" else data

    # --- stack helpers ------------------------------------------------------------------
    def push(self, value: Any) -> None:
        self.stack.append(value)

    def mark(self) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def get(self, key: int) -> None:
        if key not in self.memo:
            raise Broken(f"memo key {key} was never stored")
        self.push(self.memo[key])

    def pop_mark(self) -> list[Any]:
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def load_global(self, module: str, name: str) -> Global:
        if self.lenient and not is_valid_global(module, name):
            raise Broken(f"{module!r}.{name!r} is not an importable name")  # text, not a pickle
        severity, reason = self.allow.classify(module, name, self.proto)
        module, name = normalise(module, name, self.proto)
        if f"{module}.{name}" == GETATTR:  # judged where it is used (see gadgets)
            self.globals, self.gated = self.globals + 1, True
            return Gated(module, name)
        self.globals += 1
        self.denied += severity == "critical"
        found = Global(module, name)
        if severity:
            self.flag(found.full, severity, reason)
            self.imported.setdefault(found.full, (found.full, reason))
        return found

    def call(self, func: Any, args: Any) -> Any:
        if isinstance(func, (str, bytes, int, float, tuple, list, dict, type(None))):
            raise Broken(f"{type(func).__name__} is not callable")  # the unpickler raises too
        self.calls += 1
        if not isinstance(func, Global):
            self.flag(describe(func), "high", "calls an object built during unpickling")
            return Obj(None, args)
        if any(isinstance(a, Gated) for a in (args if isinstance(args, tuple) else ())):
            self.flag(GETATTR, "critical", f"{GETATTR} is passed to {func.full}")
        if isinstance(func, Gated):
            return self.call_getattr(args)
        if func.full in RESOLVERS:
            if isinstance(args, tuple) and len(args) == 2 and all(isinstance(a, str) for a in args):
                return self.load_global(args[0], args[1])
            self.flag(func.full, "critical", f"{func.full} resolves a non-literal global")
            return Opaque("resolved global")
        initialises = self.code in (0x52, 0x69, 0x6F)  # REDUCE, INST, OBJ call the class
        too_big = allocation_problem(func.full, args) or constructor_problem(
            func.full, args, initialises
        )
        if too_big:
            self.flag(func.full, "high", too_big)
        for index in CALLABLE_ARGUMENT.get(func.full, ()):
            given = args[index] if isinstance(args, tuple) and len(args) > index else None
            if not isinstance(given, (Global, type(None))):
                reason = f"{func.full} is given {describe(given)} to call or instantiate"
                self.flag(func.full, "high", reason)
        key = self.imported.pop(func.full, None)
        if key in self.findings:  # report the call site of a flagged import
            found = self.findings[key]
            self.findings[key] = Finding(
                self.source, found.severity, f"{found.reason}; called via {self.opname}",
                self.pos, self.opname, found.global_name,
            )  # fmt: skip
        return Obj(func, args)

    def call_getattr(self, args: Any) -> Any:
        pair = args if isinstance(args, tuple) and len(args) == 2 else (None, None)
        owner, attr = pair
        if isinstance(owner, Global) and (owner.full, attr) in METHOD_RECONSTRUCTORS:
            self.vetted += 1
            return Global(owner.module, f"{owner.name}.{attr}")
        subject = f"{describe(owner)}.{attr if isinstance(attr, str) else describe(attr)}"
        self.flag(GETATTR, "critical", f"{GETATTR} reads {subject} by name")
        return Opaque("attribute read by name")

    def build(self, state: Any) -> None:
        inst = self.stack[-1]
        if isinstance(inst, Global):
            self.flag(inst.full, "high", f"BUILD rewrites the class or function {inst.full}")
        for key in smuggled_keys(state):
            self.flag(
                describe(inst),
                "high",
                f"BUILD sets {key} on {describe(inst)} (attribute smuggling)",
            )
        built = _built_class(inst)
        problem = state_problem(state) or computed_state(state, built)
        if problem:
            self.flag(describe(inst), "critical", problem)
        for given in state_callables(built, state):
            if not isinstance(given, (Global, type(None))) or isinstance(given, Gated):
                reason = f"BUILD state gives {built} {describe(given)} to call"
                self.flag(built, "high", reason)
        if isinstance(inst, Obj):
            inst.state = state
        if self.joblib and isinstance(inst, Obj) and inst.func and inst.func.full == JOBLIB_WRAPPER:
            self.arrays += 1
            self.skip_joblib_array(state)
            self.stack[-1] = Opaque("ndarray")

    def skip_joblib_array(self, state: Any) -> None:
        """joblib writes the array's raw bytes (or a nested pickle) right after this BUILD."""
        if not isinstance(state, dict):
            raise Broken("joblib array wrapper has no state dict")
        shape = state.get("shape")
        if not (isinstance(shape, tuple) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise Broken("cannot size the joblib array that follows: no literal shape")
        try:  # the dtype as numpy rebuilds it: code, flags and its BUILD state (fields, ...)
            parsed = real_dtype(state.get("dtype"))
        except UnknownDtype as err:
            raise Broken(f"cannot size the joblib array that follows: {err}") from err
        if parsed.hasobject:
            nested = Machine(self.blob, self.source, self.end, self.allow, False).run()
            self.findings.update(nested.findings)
            self.calls, self.globals = self.calls + nested.calls, self.globals + nested.globals
            if not nested.complete:
                raise Broken(f"nested pickle of a joblib object array: {nested.error}")
            self.p = self.start + nested.end
            return
        if state.get("numpy_array_alignment_bytes") is not None:
            self.take(self.take(1)[0])
        nbytes = math.prod(shape or ()) * parsed.itemsize
        self.skip(nbytes)

    def persistent(self, pid: Any) -> None:
        self.persistent_ids.append(pid)
        self.push(Opaque("persistent object"))


def _built_class(inst: Any) -> str | None:
    """The class a modelled instance was made of (``cls(...)``, ``__newobj__(cls)``,
    ``_reconstructor(cls, ...)``), None if unknown."""
    if not (isinstance(inst, Obj) and inst.func):
        return None
    if inst.func.full in _INSTANTIATORS and isinstance(inst.args, tuple) and inst.args:
        first = inst.args[0]
        return first.full if isinstance(first, Global) else None
    return inst.func.full


def _reaches_gated(value: Any, depth: int = 0, seen: set[int] | None = None) -> bool:
    """Is a ``builtins.getattr`` global reachable from ``value`` (the unpickled object)?"""
    seen = set() if seen is None else seen
    if depth > 200 or id(value) in seen:
        return depth > 200
    seen.add(id(value))
    if isinstance(value, Gated):
        return True
    if isinstance(value, Obj):
        items: list[Any] = [value.args, value.state]
    elif isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        return False
    return any(_reaches_gated(item, depth + 1, seen) for item in items)


# --- scanning whole streams ---------------------------------------------------------------
@dataclass
class PickleReport:
    """What scanning one stream of (possibly stacked) pickles found."""

    findings: list[Finding] = field(default_factory=list)
    pickles: int = 0
    complete: bool = False
    suspicious: bool = False
    end: int = 0
    tensor_data_from: int | None = None
    persistent_ids: list[Any] = field(default_factory=list)
    vetted_getattr: bool = False  # getattr used only as a method reconstructor


def scan_pickles(
    blob: Blob,
    source: str,
    start: int = 0,
    allow: Allowlist = DEFAULT_ALLOWLIST,
    lenient: bool = False,
) -> PickleReport:
    """Scan every pickle from ``start`` to the end of ``blob``.

    ``lenient`` is for data that may not be a pickle at all (protocol 0 look-alike text, raw
    tensor bytes): a break before any import or call then means "not a pickle" (see
    ``PickleReport.suspicious``) instead of a finding.
    """
    report, pos, roots = PickleReport(), start, list[Any]()
    while pos < blob.size:
        machine = Machine(blob, source, pos, allow, lenient).run()
        report.findings.extend(machine.findings.values())
        report.persistent_ids.extend(machine.persistent_ids)
        report.vetted_getattr |= machine.vetted > 0
        # evidence of a pickle rather than text: something was called (the unpickler runs it
        # at once), a denied global was named, or a stream with globals reached its STOP
        report.suspicious |= bool(
            machine.calls or machine.denied or (machine.globals and machine.complete)
        )
        report.end = machine.end
        if machine.arrays:
            _plain_view(report, blob, source, pos, allow)
        if not machine.complete:
            _add_break(report, machine, source, pos, lenient)
            return report
        report.pickles, pos = report.pickles + 1, machine.end
        roots.append(machine.root)
        if roots[0] == TORCH_MAGIC and len(roots) == 5:
            report.tensor_data_from = pos  # legacy torch: raw storages follow, never unpickled
            break
    report.complete = True
    return report


def _add_break(report: PickleReport, machine: Machine, source: str, pos: int, lenient: bool):
    if lenient and not report.suspicious:
        return
    if report.pickles and machine.opcodes == 0 and machine.pos == pos:
        reason = f"{machine.blob.size - pos} bytes of non-pickle data follow the last STOP"
        report.findings.append(Finding(source, "medium", reason, pos))
        report.complete = True
        return
    reason = f"broken pickle: {machine.error} (opcodes before the break still count)"
    report.findings.append(Finding(source, "high", reason, machine.pos, machine.opname))


def _plain_view(report: PickleReport, blob: Blob, source: str, pos: int, allow: Allowlist) -> None:
    """joblib reads its inline arrays as raw bytes, plain ``pickle.load`` parses them as
    opcodes: scan that reading too, so array bytes cannot hide a payload from one of them."""
    plain = Machine(blob, source, pos, allow, True, joblib=False, budget=PLAIN_VIEW_BUDGET).run()
    seen = {(f.global_name, f.reason) for f in report.findings}
    report.findings += [f for f in plain.findings.values() if (f.global_name, f.reason) not in seen]
    if plain.opcodes >= PLAIN_VIEW_BUDGET:
        reason = "joblib array bytes parse as a long pickle stream that plain pickle.load would run"
        report.findings.append(Finding(source, "high", reason, plain.pos, plain.opname))
