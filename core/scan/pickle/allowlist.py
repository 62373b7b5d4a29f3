"""Which globals a pickle may import, deny by construction (``classify`` returns a severity or
None).

Allowed are (1) the named reconstructor functions and value types model objects need
(``EXACT_ALLOWED``: numpy's ``_reconstruct``/``scalar``/``_frombuffer``, the random-state
constructors, copyreg's reconstructors, torch's ``_rebuild_*``, pandas' and scikit-learn's
unpickle helpers, ...), (2) numpy ufuncs and scalar types, and (3) *classes* defined inside
the model libraries (scikit-learn estimators, scipy sparse matrices and distributions, pandas
frames, xgboost/lightgbm/catboost models), checked by :mod:`introspect` without importing
them: the name must be a class defined in (or re-exported from) one of those libraries.
No function is allowed by its package; any
other callable is a finding. A policy may add ``extra`` patterns but never what the denylist
names (functions that return modules, read attributes by name, evaluate code, import, open
files or start processes, wherever they live).
"""

from __future__ import annotations

import _compat_pickle
import functools
import importlib
import importlib.util
import re
from dataclasses import dataclass
from typing import Any

from mlsecops_provider.core.scan.pickle.introspect import is_library_class


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_IDENT = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z", re.ASCII)
_PATTERN = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(\.\*)?\Z", re.ASCII)
RESOLVERS = frozenset({"numpy.core._ufunc_reconstruct", "numpy._core._ufunc_reconstruct"})
JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
NUMPY_DTYPE = "numpy.dtype"
_NP = ("numpy.core", "numpy._core")
_RNG = "numpy.random."
_SK_NEW = ("metrics._dist_metrics", "neighbors._kd_tree", "neighbors._ball_tree",
           "neighbors._binary_tree", "neighbors.kd_tree", "neighbors.ball_tree",
           "neighbors.dist_metrics", "metrics.dist_metrics")  # fmt: skip
_SK_SCORES = ("f_classif", "f_regression", "chi2", "r_regression", "f_oneway")
EXACT_ALLOWED = frozenset(
    [f"{m}.multiarray.{n}" for m in _NP for n in ("_reconstruct", "scalar")]
    + [f"{m}.numeric._frombuffer" for m in _NP]
    + [f"{_RNG}_pickle.__{n}_ctor" for n in ("randomstate", "bit_generator", "generator")]
    + [f"{_RNG}{n}" for n in ("mtrand.RandomState", "_generator.Generator", "_mt19937.MT19937",
       "_pcg64.PCG64", "_pcg64.PCG64DXSM", "_philox.Philox", "_sfc64.SFC64",
       "bit_generator.SeedSequence", "bit_generator.__pyx_unpickle_SeedSequence")]
    + ["numpy.ndarray", NUMPY_DTYPE, "numpy.ma.core._mareconstruct", "numpy.ma.MaskedArray",
       "numpy.ma.core.MaskedArray", *RESOLVERS]
    + [f"builtins.{n}" for n in ("set", "frozenset", "slice", "complex", "bytearray", "bytes",
       "int", "float", "str", "bool", "list", "dict", "tuple", "range", "object", "Ellipsis",
       "NotImplemented")]
    + [f"collections.{n}" for n in ("OrderedDict", "defaultdict", "deque", "Counter")]
    + [f"datetime.{n}" for n in ("datetime", "date", "time", "timedelta", "timezone")]
    + ["copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__",
       "_codecs.encode", "functools.partial", "decimal.Decimal", "fractions.Fraction",
       "uuid.UUID", JOBLIB_WRAPPER]
    + [f"sklearn.{m}.newObj" for m in _SK_NEW]
    + [f"sklearn.feature_selection._univariate_selection.{n}" for n in _SK_SCORES]
    + [f"sklearn.feature_selection._mutual_info.mutual_info_{n}" for n in ("classif", "regression")]
    + [f"sklearn.cluster._kmeans._kmeans_single_{n}" for n in ("lloyd", "elkan")]
    + ["scipy._lib.array_api_compat.numpy._aliases.asarray"]
    + ["pytz._p", "pytz._UTC", "zoneinfo.ZoneInfo", "zoneinfo.ZoneInfo._unpickle"]
    + [f"dateutil.tz.tz.{n}" for n in ("tzutc", "tzoffset", "tzlocal")]
    + [f"pandas._libs.{n}" for n in ("internals._unpickle_block", "tslibs.nattype._nat_unpickle",
       "tslibs.timedeltas._timedelta_unpickle", "tslibs.timestamps._unpickle_timestamp",
       "arrays.__pyx_unpickle_NDArrayBacked", "tslibs.offsets._offset_map",
       "sparse.__pyx_unpickle_IntIndex", "sparse.__pyx_unpickle_BlockIndex")]
    + [f"pandas.core.{n}" for n in ("indexes.base._new_Index", "internals.blocks.new_block",
       "indexes.datetimes._new_DatetimeIndex", "indexes.period._new_PeriodIndex",
       "arrays.categorical._unpickle_categorical", "internals.managers._unpickle_block")]
    + [f"torch._utils._rebuild_{n}" for n in ("tensor", "tensor_v2", "tensor_v3", "parameter",
       "parameter_with_state", "qtensor", "sparse_tensor", "meta_tensor_no_storage",
       "wrapper_subclass", "device_tensor_from_numpy", "device_tensor_from_cpu_tensor")]
    + ["torch._tensor._rebuild_from_type_v2", "torch.nn.parameter.Parameter", "torch.Size",
       "torch.serialization._get_layout", "torch.Tensor", "torch.device",
       "torch.storage.TypedStorage", "torch.storage.UntypedStorage"]
    + [f"pyarrow.lib.{n}" for n in ("_restore_array", "py_buffer", "type_for_alias")]
)  # fmt: skip
_TORCH_NAMES = _words(
    "float float32 float64 double float16 half bfloat16 int8 int16 short int32 int int64 long "
    "uint8 uint16 uint32 uint64 bool complex32 complex64 complex128 cfloat cdouble "
    "float8_e4m3fn float8_e5m2 float8_e4m3fnuz float8_e5m2fnuz strided sparse_coo "
    "per_tensor_affine per_tensor_symmetric per_channel_affine per_channel_symmetric "
    "per_channel_affine_float_qparams qint8 quint8 qint32"
)
_NUMPY_FUNCS = _words(
    "mean median sum prod max min amax amin std var average nanmean nanmedian nansum nanmax "
    "nanmin nanstd nanvar percentile quantile nanpercentile nanquantile ptp argmax argmin "
    "cumsum sort unique clip round around"
)
DENY_MODULES = _words(
    "os posix nt subprocess _posixsubprocess sys pty socket _socket shutil runpy pdb bdb code "
    "codeop ctypes _ctypes pickle _pickle cPickle marshal importlib imp pkgutil zipimport "
    "cProfile profile _lsprof timeit trace doctest pydoc webbrowser antigravity this asyncio "
    "multiprocessing threading _thread signal operator _operator types inspect dill "
    "cloudpickle tempfile glob io _io urllib urllib2 http httplib requests aiohttp ftplib "
    "smtplib telnetlib xmlrpc socketserver venv ensurepip pip setuptools distutils site "
    "idlelib tkinter turtle gc builtins.type _winapi winreg _winreg msvcrt _msi commands "
    "numpy.testing numpy.f2py numpy.distutils "
    "numpy.ctypeslib numpy.lib.npyio numpy.lib._npyio_impl numpy.lib.format "
    "numpy.lib._datasource torch.hub torch.jit torch.package torch.ops torch.classes "
    "torch.utils.cpp_extension torch._dynamo torch._inductor torch.load torch.serialization.load "
    "pandas.io pandas.core.computation pandas.eval pandas.read_pickle joblib.load "
    "joblib.memory joblib.parallel scipy.io scipy._lib._ccallback scipy.weave"
)
DANGEROUS_NAMES = _words(
    "eval exec execfile compile getattr setattr delattr __import__ open breakpoint input "
    "globals locals vars help exit quit apply reload system popen spawn spawnv spawnl execv "
    "execve execvp fork load loads read_pickle import_module resolve_name methodcaller "
    "attrgetter itemgetter run runctx runcall call check_call check_output Popen remove "
    "unlink rmtree rmdir fdopen memmap fromfile loadtxt genfromtxt save savez savetxt tofile "
    "safe_eval literal_eval myeval runstring vectorize frompyfunc LowLevelCallable "
    "get_namespace array_namespace import_string locate"
)
_DANGEROUS_CLASS = re.compile(
    r"(File|Memmap|Mmap|Loader|Reader|Writer|Store|Pool$|Executor|Thread|Popen|Subprocess|Socket"
    r"|Connection|Importer|Interpreter|Shell|Client|DataSource)",
    re.ASCII,
)
_NEVER_PARTS = frozenset({"tests", "testing", "_testing", "conftest", "io", "_io", "datasets",
                          "externals", "computation", "_mocking", "plotting"})  # fmt: skip
CLASS_ROOTS = ("sklearn", "scipy.sparse", "scipy.spatial", "scipy.stats", "scipy.interpolate",
               "scipy.optimize._optimize", "pandas", "numpy.random", "numpy.dtypes",
               "numpy.ma", "xgboost", "lightgbm", "catboost")  # fmt: skip
METRIC_MODULES = frozenset(
    f"sklearn.metrics.{m}" for m in ("_classification", "_regression", "_ranking",
                                     "cluster._supervised", "cluster._unsupervised",
                                     "cluster._bicluster", "classification", "regression",
                                     "ranking")
)  # fmt: skip
_METRIC = re.compile(
    r"[a-z][a-z0-9_]*_(score|error|loss|deviance)\Z|(matthews_corrcoef|auc|confusion_matrix"
    r"|precision_recall_fscore_support|class_likelihood_ratios)\Z",
    re.ASCII,
)
DEFAULT_SEVERITY = "high"
_MISSING = object()


def normalise(module: str, name: str, protocol: int = 2) -> tuple[str, str]:
    """Apply pickle's Python 2 name mapping (``__builtin__`` -> ``builtins``, ``copy_reg``
    -> ``copyreg``, ...), as ``pickle`` does for protocols 0-2."""
    if protocol >= 3:
        return module, name
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return tuple(_compat_pickle.NAME_MAPPING[(module, name)])  # type: ignore[return-value]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def is_valid_global(module: str, name: str) -> bool:
    """True if ``module`` and ``name`` are dotted ASCII identifiers (importable shapes)."""
    return bool(_IDENT.match(module) and _IDENT.match(name))


@dataclass(frozen=True)
class Allowlist:
    """The default allowlist plus ``extra`` patterns (``pkg.mod.Name`` or ``pkg.mod.*``)."""

    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for pattern in self.extra:
            if not isinstance(pattern, str) or not _PATTERN.match(pattern):
                raise ValueError(f"allowed global {pattern!r} must look like pkg.mod.Name or pkg.*")

    def classify(self, module: str, name: str, protocol: int = 2) -> tuple[str | None, str]:
        """``(None, why)`` if the global is allowed, else ``(severity, reason)``."""
        module, name = normalise(module, name, protocol)
        full = f"{module}.{name}"
        if not is_valid_global(module, name):
            return DEFAULT_SEVERITY, f"{full!r} is not a valid module and attribute path"
        if full in EXACT_ALLOWED:
            return None, "allowlisted"
        danger = danger_of(module, name)
        if danger:
            return "critical", danger
        if "." in name:
            return DEFAULT_SEVERITY, f"{full} reaches an attribute through a dotted name"
        if self._extra_allows(module, full) or _rule_allows(module, name):
            return None, "allowlisted"
        return DEFAULT_SEVERITY, f"{full} is not an allowlisted class or reconstructor"

    def allows(self, module: str, name: str, protocol: int = 2) -> bool:
        return self.classify(module, name, protocol)[0] is None

    def _extra_allows(self, module: str, full: str) -> bool:
        for pattern in self.extra:
            prefix = pattern[:-2] if pattern.endswith(".*") else None
            if full == pattern or (
                prefix and (module == prefix or module.startswith(prefix + "."))
            ):
                return True
        return False


def danger_of(module: str, name: str) -> str | None:
    """Why ``module.name`` can run code or reach the system (None if nothing is known)."""
    parts = f"{module}.{name}".split(".")
    for i in range(1, len(parts) + 1):
        if ".".join(parts[:i]) in DENY_MODULES:
            return f"{'.'.join(parts)}: {'.'.join(parts[:i])} can run code or reach the system"
    for piece in name.split("."):
        if piece.startswith("__") and piece.endswith("__"):
            return f"{module}.{name}: reaches dunder attribute {piece}"
        if piece in DANGEROUS_NAMES or piece in DENY_MODULES:
            return f"{module}.{name}: {piece!r} loads, runs, opens or deletes something"
    return None


def _under(module: str, roots: tuple[str, ...]) -> bool:
    return any(module == root or module.startswith(root + ".") for root in roots)


def _rule_allows(module: str, name: str) -> bool:
    if _NEVER_PARTS.intersection(module.split(".")):
        return False
    if module in ("torch", "torch.cuda"):
        return name in _TORCH_NAMES or (name[:1].isupper() and name.endswith(("Storage", "Tensor")))
    if module == "numpy":
        return _numpy_allows(name)
    if module.startswith("scipy.special"):
        return _is_ufunc(_lookup(module, name))
    if module in METRIC_MODULES and _METRIC.match(name):
        return True  # scorers of fitted searches keep the metric function (pure computation)
    if not _under(module, CLASS_ROOTS):
        return False
    return is_model_class(module, name)


@functools.lru_cache(maxsize=4096)
def is_model_class(module: str, name: str) -> bool:
    """A class (not a function) defined inside one of the model libraries, judged by
    :mod:`introspect` without importing the library. Where the module cannot be read (a
    compiled extension, a library not installed here) the name must look like a class."""
    if _DANGEROUS_CLASS.search(name):
        return False
    decided = is_library_class(module, name, CLASS_ROOTS)
    if decided is not None:
        return decided
    scipy_shapes = ("_matrix", "_array", "_gen", "_frozen")  # scipy's lowercase classes
    return name[:1].isupper() or (module.startswith("scipy.") and name.endswith(scipy_shapes))


def _lookup(module: str, name: str) -> Any:
    """``vars(module)[name]`` if the library is installed, ``_MISSING`` if it is not.

    Only modules of the model libraries reach this (after the denylist); ``vars`` instead of
    ``getattr`` so that a module's lazy ``__getattr__`` cannot import anything else.
    """
    try:
        if importlib.util.find_spec(module.split(".")[0]) is None:
            return _MISSING
        loaded = importlib.import_module(module)
    except Exception:  # a module of another version of the library, or one that fails here
        return _MISSING
    return vars(loaded).get(name)


def _is_ufunc(obj: Any) -> bool:
    import numpy

    return isinstance(obj, numpy.ufunc)


def _numpy_allows(name: str) -> bool:
    if name in _NUMPY_FUNCS:
        return True
    import numpy

    obj = vars(numpy).get(name)  # no getattr: numpy's lazy __getattr__ imports submodules
    return _is_ufunc(obj) or (isinstance(obj, type) and issubclass(obj, numpy.generic))


DEFAULT_ALLOWLIST = Allowlist()
