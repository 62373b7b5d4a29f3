"""Gadgets inside allowlisted names: what an allowed class or reconstructor may be given.

* Reconstructors that call what they are given (``copyreg._reconstructor``, ``__newobj__``,
  ``functools.partial``, torch's ``_rebuild_from_type_v2``, ...) must be given a global (one
  the allowlist judged), never an object computed while unpickling.
* BUILD states that an allowed class turns into code: scipy's distributions ``exec`` their
  ``_parse_arg_template`` in ``__setstate__``; the template must be the argument parser
  scipy generates (function definitions returning their arguments), nothing else.
* ``builtins.getattr`` only as ``getattr(zoneinfo.ZoneInfo, "_unpickle")`` (how pickle
  writes a classmethod reconstructor), consumed at once; anywhere else it is critical.
* joblib arrays and ``.npy`` object arrays are sized from the *real* dtype: the modelled
  ``numpy.dtype(code, align, copy)`` call plus its BUILD state, rebuilt from literals.
"""

from __future__ import annotations

import ast
from typing import Any

CALLABLE_ARGUMENT = {
    "copyreg._reconstructor": (0, 1), "copyreg.__newobj__": (0,), "copyreg.__newobj_ex__": (0,),
    "functools.partial": (0,), "torch._tensor._rebuild_from_type_v2": (0, 1),
    "torch._utils._rebuild_wrapper_subclass": (0,), "numpy.core.multiarray._reconstruct": (0,),
    "numpy._core.multiarray._reconstruct": (0,), "collections.defaultdict": (0,),
}  # fmt: skip
CALLABLE_STATE = {"functools.partial": 0, "collections.defaultdict": "default_factory"}
"""Where a BUILD state replaces what a reconstructor calls: ``partial.__setstate__`` takes
``(func, args, kwds, dict)``; a defaultdict's factory is set from the slot state."""
CODE_STATE_KEYS = ("_parse_arg_template",)
CODE_STATE_ROOTS = ("scipy.stats",)
"""Where the classes live whose ``__setstate__`` executes a key of their state."""
GETATTR = "builtins.getattr"
METHOD_RECONSTRUCTORS = frozenset({("zoneinfo.ZoneInfo", "_unpickle")})
"""``getattr(cls, name)`` pairs pickle writes for classmethod reconstructors (protocols < 4
and 5 alike): the only reads of an attribute by name a pickle may make."""
_TEMPLATE_NODES = (
    ast.Module, ast.FunctionDef, ast.arguments, ast.arg, ast.Return, ast.Tuple, ast.Name,
    ast.Load, ast.Constant, ast.keyword, ast.Call, ast.Attribute, ast.Starred,
)  # fmt: skip


MAX_ALLOCATION = 1 << 28
"""Largest buffer (bytes) or range (items) a constructor may be asked for while unpickling:
``bytearray(10**11)`` or ``list(range(10**10))`` exhaust memory before any data is read."""


def allocation_problem(name: str, args: Any) -> str | None:
    """Why calling ``name(*args)`` would allocate far more than the pickle holds."""
    if not (isinstance(args, tuple) and args and all(type(a) is int for a in args)):
        return None
    if name in ("builtins.bytes", "builtins.bytearray") and args[0] > MAX_ALLOCATION:
        return f"{name}({args[0]}) allocates more than {MAX_ALLOCATION} bytes"
    if name == "builtins.range" and len(args) <= 3 and 0 not in args[2:]:
        items = range(*args)  # its length in Python ints: len() overflows past sys.maxsize
        step = items.step
        count = max(0, (items.stop - items.start + step - (1 if step > 0 else -1)) // step)
        if count > MAX_ALLOCATION:
            return f"{name}{args} has more than {MAX_ALLOCATION} items"
    return None


FILE_CONSTRUCTORS = frozenset(
    f"{root}.{name}"
    for root, names in (
        ("xgboost", "Booster DMatrix QuantileDMatrix ExtMemQuantileDMatrix"),
        ("xgboost.core", "Booster DMatrix QuantileDMatrix ExtMemQuantileDMatrix"),
        ("lightgbm", "Booster Dataset"),
        ("lightgbm.basic", "Booster Dataset"),
        ("catboost", "Pool CatBoost CatBoostClassifier CatBoostRegressor CatBoostRanker"),
        ("catboost.core", "Pool CatBoost CatBoostClassifier CatBoostRegressor CatBoostRanker"),
    )
    for name in names.split()
)
"""Model classes whose constructor opens a path it is given (``model_file=``, a data path,
``train_dir``): pickles rebuild them with ``__new__`` and BUILD, never by calling them."""


def constructor_problem(name: str, args: Any, initialises: bool) -> str | None:
    """Why a call runs the ``__init__`` of a :data:`FILE_CONSTRUCTORS` class (REDUCE, INST
    and OBJ call the class; ``copyreg._reconstructor(cls, base, state)`` calls
    ``base.__init__(obj, state)``; NEWOBJ only ``__new__``)."""
    if initialises and name in FILE_CONSTRUCTORS:
        return f"{name} is called: its constructor opens files by path"
    if name == "copyreg._reconstructor" and isinstance(args, tuple) and len(args) == 3:
        base = args[1]
        full = (
            getattr(base, "full", None)
            or f"{getattr(base, '__module__', '')}.{getattr(base, '__qualname__', '')}"
        )
        if full in FILE_CONSTRUCTORS and args[2] is not None:
            return f"copyreg._reconstructor runs {full}.__init__: it opens files by path"
    return None


def state_mappings(state: Any) -> list[dict[Any, Any]]:
    """The mappings a BUILD state becomes, read as ``__setstate__``/``load_build`` read it.

    ``__dict__.update(state)`` (scipy's distributions, ...) accepts any mapping (a dict, a
    pandas Series: whatever has ``keys()``) and any iterable of key/value pairs (a list, a
    tuple, a set of pairs, a 2-column array); a 2-tuple may also be ``(state, slotstate)``.
    So the state itself and, for a 2-tuple, each half are read both ways.
    """
    parts = [state, *state] if isinstance(state, tuple) and len(state) == 2 else [state]
    found = []
    for part in parts:
        view = _as_mapping(part)
        if view:
            found.append(view)
    return found


def _as_mapping(part: Any) -> dict[Any, Any] | None:
    """What ``dict.update(part)`` sets: ``keys()``/``__getitem__`` of a mapping, or the pairs
    of a sequence of 2-item iterables up to the first item that is not one (``update`` has
    set those already when it raises). Works on real objects (load time) and on the scanner's
    modelled containers alike (a modelled call is not iterable)."""
    if part is None or isinstance(part, (str, bytes, bytearray, int, float)):
        return None
    if isinstance(part, dict):
        return part
    if callable(getattr(type(part), "keys", None)):
        try:
            return dict(part)
        except Exception:  # noqa: BLE001 - dict.update raises on it too: nothing is set
            return None
    view: dict[Any, Any] = {}
    try:
        for item in part:
            key, value = item
            view[key] = value
    except Exception:  # noqa: BLE001, S110 - update stops here too, after the pairs before
        pass
    return view or None


def state_callables(built: str | None, state: Any) -> list[Any]:
    """What a BUILD state makes ``built`` call later (see :data:`CALLABLE_STATE`)."""
    where = CALLABLE_STATE.get(built or "")
    if isinstance(where, int):
        return [state[where]] if isinstance(state, tuple) and len(state) > where else [state]
    if where is None:
        return []
    return [view[where] for view in state_mappings(state) if where in view]


def state_problem(state: Any) -> str | None:
    """Why a BUILD state would make an allowed class run code (None if it would not)."""
    for part in state_mappings(state):
        for key in CODE_STATE_KEYS:
            if key in part:
                problem = template_problem(part[key])
                if problem:
                    return f"BUILD state {key} is executed by __setstate__: {problem}"
    return None


def computed_state(state: Any, built: str | None) -> str | None:
    """Why the scanner cannot read a BUILD state's keys (None if it can): attribute names
    computed while unpickling (``str(...)`` as a dict key), or, for a class under
    :data:`CODE_STATE_ROOTS` (its ``__setstate__`` executes a key), a state that is itself
    computed (``dict(...)``, a Series, ...) or holds computed items ``dict.update`` would read."""
    from mlsecops_provider.core.scan.pickle.ops import Obj, Opaque

    computed = (Obj, Opaque)
    parts = [state, *state] if isinstance(state, tuple) and len(state) == 2 else [state]
    if any(isinstance(p, dict) and any(isinstance(k, computed) for k in p) for p in parts):
        return "BUILD state has attribute names computed while unpickling"
    if not (built and any(built == r or built.startswith(r + ".") for r in CODE_STATE_ROOTS)):
        return None
    for part in parts:
        items = part if isinstance(part, (list, tuple)) else [part]
        if any(isinstance(item, computed) for item in items) or any(
            isinstance(key, computed) for view in state_mappings(part) for key in view
        ):
            return f"BUILD state of {built} (its __setstate__ executes a key) is computed"
    return None


def template_problem(template: Any) -> str | None:
    """scipy's generated argument parsers only: ``def f(self, a, loc=0): return (a,), loc``."""
    if template is None:
        return None
    if not isinstance(template, str):
        return "not a literal string"
    try:
        tree = ast.parse(template)
    except (SyntaxError, ValueError) as err:
        return f"not Python ({err.__class__.__name__})"
    for node in ast.walk(tree):
        if not isinstance(node, _TEMPLATE_NODES):
            return f"contains {type(node).__name__}"
        if isinstance(node, ast.FunctionDef) and (node.decorator_list or node.returns):
            return "decorated or annotated function"
        if isinstance(node, ast.Attribute) and not _self_argcheck(node):
            return f"reaches attribute {node.attr!r}"
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Attribute) and _self_argcheck(node.func)
        ):
            return "calls something other than self._argcheck_rvs"
        if isinstance(node, ast.arg) and node.annotation is not None:
            return "annotated argument"
    if not all(isinstance(stmt, ast.FunctionDef) for stmt in tree.body):
        return "code outside function definitions"
    return None


def _self_argcheck(node: ast.Attribute) -> bool:
    owner = node.value
    return isinstance(owner, ast.Name) and owner.id == "self" and node.attr == "_argcheck_rvs"


def smuggled_keys(state: Any) -> list[str]:
    """Dunder attributes a BUILD state sets (``__reduce__``, ``__class__``, ...); a string
    ``__doc__`` is data (scipy's distributions keep theirs in the state)."""
    found = []
    for part in state_mappings(state):
        for key, value in part.items():
            if key == "__doc__" and isinstance(value, (str, type(None))):
                continue
            if isinstance(key, str) and key.startswith("__") and key.endswith("__"):
                found.append(key)
    return found


class UnknownDtype(ValueError):
    """The dtype cannot be rebuilt from literals."""


def real_dtype(value: Any) -> Any:
    """A ``numpy.dtype`` from a modelled ``numpy.dtype(...)`` call and its BUILD state."""
    import numpy

    from mlsecops_provider.core.scan.pickle.ops import Obj

    if isinstance(value, str):
        return numpy.dtype(value)
    if not (isinstance(value, Obj) and value.func and value.func.full == "numpy.dtype"):
        raise UnknownDtype("the dtype is not a numpy.dtype(...) call")
    args = value.args if isinstance(value.args, tuple) else ()
    if not args or not isinstance(args[0], str) or not all(isinstance(a, bool) for a in args[1:]):
        raise UnknownDtype("numpy.dtype is called with non-literal arguments")
    try:
        dtype = numpy.dtype(args[0], bool(args[1:2] and args[1]), True)  # a copy, never
        if value.state is not None:
            dtype.__setstate__(_literal(value.state))  # the shared builtin dtype instance
    except (TypeError, ValueError) as err:
        raise UnknownDtype(f"invalid dtype state ({err})") from err
    return dtype


def _literal(value: Any, depth: int = 0) -> Any:
    from mlsecops_provider.core.scan.pickle.ops import Obj

    if depth > 32:
        raise UnknownDtype("dtype state nested too deep")
    if value is None or isinstance(value, (str, bytes, int, float, bool)):
        return value
    if isinstance(value, Obj) and value.func and value.func.full == "_codecs.encode":
        return _protocol2_bytes(value.args)  # how protocols < 3 write bytes (b"ns" units)
    if isinstance(value, Obj):
        return real_dtype(value)
    if isinstance(value, tuple):
        return tuple(_literal(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return {_literal(k, depth + 1): _literal(v, depth + 1) for k, v in value.items()}
    raise UnknownDtype(f"dtype state holds a {type(value).__name__}")


def _protocol2_bytes(args: Any) -> bytes:
    """``_codecs.encode(text, "latin1")``, evaluated only for literal arguments (the encoding
    name is compared, never looked up: a codec lookup may import modules)."""
    import codecs

    if not (isinstance(args, tuple) and len(args) == 2 and all(isinstance(a, str) for a in args)):
        raise UnknownDtype("_codecs.encode with non-literal arguments in a dtype state")
    if args[1].lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise UnknownDtype(f"_codecs.encode to {args[1]!r} in a dtype state")
    return codecs.encode(args[0], "latin1")
