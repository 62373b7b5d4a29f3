"""The load-time half of deny by construction: an unpickler that can only build allowed things.

Built on the pure-Python unpickler (``pickle._Unpickler``, which joblib's ``NumpyUnpickler``
also extends) so that its opcodes can be checked, not only ``find_class``:

* ``find_class`` returns only what :class:`Allowlist` allows (classes and named
  reconstructors; resolvers never), and remembers what it returned;
* REDUCE, NEWOBJ, NEWOBJ_EX, OBJ and INST may only call what ``find_class`` returned, never
  an object built while unpickling; reconstructors that call their argument get a returned
  global there too;
* BUILD refuses dunder attributes (``__reduce__``, ``__class__``, ...) and states an allowed
  class would execute (scipy's ``_parse_arg_template``);
* joblib's object arrays are read by this same unpickler, not by a plain nested one (judged
  by the dtype the wrapper has after its BUILD, whatever shape the state had).

So a scan miss cannot become code execution in :func:`safe_load`.
"""

from __future__ import annotations

import pickle
from typing import Any

from mlsecops_provider.core.scan.pickle.allowlist import RESOLVERS, Allowlist, normalise
from mlsecops_provider.core.scan.pickle.gadgets import (
    CALLABLE_ARGUMENT,
    GETATTR,
    METHOD_RECONSTRUCTORS,
    allocation_problem,
    constructor_problem,
    smuggled_keys,
    state_callables,
    state_problem,
)

_CALLS = ("REDUCE", "NEWOBJ", "NEWOBJ_EX", "OBJ", "INST")


def restricted_unpickler(base: type[Any], allow: Allowlist) -> type[Any]:
    """A subclass of ``base`` (``pickle._Unpickler`` or a subclass) enforcing ``allow``."""
    if base is pickle.Unpickler:
        base = pickle._Unpickler  # the C one has no dispatch table

    class Restricted(base):
        dispatch = dict(base.dispatch)

        def find_class(self, module: str, name: str) -> Any:
            proto = getattr(self, "proto", 2)
            if normalise(module, name, proto) == ("builtins", "getattr"):
                return self._remember(self._vetted_getattr, GETATTR)
            if f"{module}.{name}" in RESOLVERS or not allow.allows(module, name, proto):
                raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
            found = super().find_class(module, name)
            self.__dict__.setdefault("_found", {})[id(found)] = (found, f"{module}.{name}")
            return found

        def _remember(self, found: Any, name: str) -> Any:
            self.__dict__.setdefault("_found", {})[id(found)] = (found, name)
            return found

        def _vetted_getattr(self, owner: Any, attr: str) -> Any:
            """``builtins.getattr`` here: the method reconstructors only (see gadgets)."""
            full = f"{getattr(owner, '__module__', '')}.{getattr(owner, '__qualname__', '')}"
            if not isinstance(owner, type) or (full, attr) not in METHOD_RECONSTRUCTORS:
                raise pickle.UnpicklingError(f"getattr({full}, {attr!r}) is not allowed")
            return self._remember(getattr(owner, attr), f"{full}.{attr}")

        def _callable(self, func: Any, what: str) -> str:
            entry = self.__dict__.get("_found", {}).get(id(func))
            if entry is None or entry[0] is not func:
                raise pickle.UnpicklingError(f"{what} calls an object built while unpickling")
            return str(entry[1])

        def _check_call(self, func: Any, args: Any, what: str) -> None:
            name = self._callable(func, what)
            initialises = what in ("REDUCE", "OBJ", "INST")
            too_big = allocation_problem(name, args) or constructor_problem(name, args, initialises)
            if too_big:
                raise pickle.UnpicklingError(too_big)
            for index in CALLABLE_ARGUMENT.get(name, ()):
                if isinstance(args, tuple) and len(args) > index and args[index] is not None:
                    self._callable(args[index], f"{name} argument {index}")

        def _instantiate(self, klass: Any, args: list[Any]) -> None:
            """INST and OBJ: the class was returned by find_class (OBJ is checked before),
            and reconstructors that call their argument get a returned global there too."""
            self._check_call(klass, tuple(args), "INST")
            super()._instantiate(klass, args)

        def _check_build(self) -> None:
            state = self.stack[-1]
            for key in smuggled_keys(state):
                raise pickle.UnpicklingError(f"BUILD sets {key} (attribute smuggling)")
            problem = state_problem(state)
            if problem:
                raise pickle.UnpicklingError(problem)
            built = _class_name(self.stack[-2])
            for given in state_callables(built, state):
                if given is not None:
                    self._callable(given, f"BUILD state of {built}")

    _install_checks(Restricted, base, allow)
    return Restricted


def _class_name(inst: Any) -> str:
    cls = type(inst)
    return f"{cls.__module__}.{cls.__qualname__}"


def _install_checks(cls: type[Any], base: type[Any], allow: Allowlist) -> None:
    table = cls.dispatch

    def reduce(self: Any) -> None:
        self._check_call(self.stack[-2], self.stack[-1], "REDUCE")
        base.dispatch[pickle.REDUCE[0]](self)

    def newobj(self: Any) -> None:
        self._check_call(self.stack[-2], self.stack[-1], "NEWOBJ")  # cls.__new__(cls, *args)
        base.dispatch[pickle.NEWOBJ[0]](self)

    def newobj_ex(self: Any) -> None:
        self._check_call(self.stack[-3], self.stack[-2], "NEWOBJ_EX")
        base.dispatch[pickle.NEWOBJ_EX[0]](self)

    def obj(self: Any) -> None:
        marked = self.stack  # the items since the last MARK; the class comes first
        if marked:
            self._check_call(marked[0], tuple(marked[1:]), "OBJ")
        base.dispatch[pickle.OBJ[0]](self)

    def build(self: Any) -> None:
        self._check_build()
        if not (_is_array_wrapper(self.stack[-2]) and hasattr(self, "ensure_native_byte_order")):
            base.dispatch[pickle.BUILD[0]](self)
            return
        # joblib's wrapper: apply the state first (any shape: a dict, (None, slotstate), ...),
        # then judge the dtype the wrapper really has, as joblib's read_array will
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
        wrapper = self.stack.pop()
        if getattr(getattr(wrapper, "dtype", None), "hasobject", False):
            self.stack.append(_read_object_array(self, wrapper, allow))
        else:
            self.stack.append(wrapper.read(self, self.ensure_native_byte_order))

    for code, func in ((pickle.REDUCE, reduce), (pickle.NEWOBJ, newobj), (pickle.OBJ, obj),
                       (pickle.NEWOBJ_EX, newobj_ex), (pickle.BUILD, build)):  # fmt: skip
        table[code[0]] = func
    # INST goes through find_class and then ``_instantiate`` (checked above, as OBJ is).


def _is_array_wrapper(inst: Any) -> bool:
    from joblib.numpy_pickle import NumpyArrayWrapper

    return isinstance(inst, NumpyArrayWrapper)


def _read_object_array(outer: Any, wrapper: Any, allow: Allowlist) -> Any:
    """joblib pickles object arrays right after their wrapper: read them with our unpickler."""
    import numpy

    if wrapper.subclass not in (numpy.ndarray, numpy.memmap):
        raise pickle.UnpicklingError("joblib object array of a foreign ndarray subclass")
    inner = restricted_unpickler(pickle._Unpickler, allow)(outer.file_handle)
    return inner.load()
