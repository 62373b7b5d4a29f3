"""Which globals a pickle may import: an allowlist of what real models need, a denylist of
what runs code, and the rules in between (``classify`` returns a severity or None).

The allowlist covers numpy, scikit-learn, scipy, pandas, torch, joblib, xgboost/lightgbm and
safe builtins; prefix rules exclude test, I/O and dataset helpers. A policy may extend it
(``extra`` patterns) but can never allow what the denylist names.
"""

from __future__ import annotations

import _compat_pickle
import re
from dataclasses import dataclass


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_IDENT = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z", re.ASCII)
_PATTERN = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(\.\*)?\Z", re.ASCII)
RESOLVERS = frozenset({"numpy.core._ufunc_reconstruct", "numpy._core._ufunc_reconstruct"})
JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_NP = ("numpy.core", "numpy._core")
_RNG = "numpy.random."
EXACT_ALLOWED = frozenset(
    [f"{m}.multiarray.{n}" for m in _NP for n in ("_reconstruct", "scalar")]
    + [f"{m}.numeric._frombuffer" for m in _NP]
    + [f"{_RNG}_pickle.__{n}_ctor" for n in ("randomstate", "bit_generator", "generator")]
    + [f"{_RNG}{n}" for n in ("mtrand.RandomState", "_generator.Generator", "_mt19937.MT19937",
       "_pcg64.PCG64", "_pcg64.PCG64DXSM", "_philox.Philox", "_sfc64.SFC64",
       "bit_generator.SeedSequence", "bit_generator.__pyx_unpickle_SeedSequence")]
    + ["numpy.ndarray", "numpy.dtype", "numpy.ma.core._mareconstruct", "numpy.ma.MaskedArray",
       "numpy.ma.core.MaskedArray", *RESOLVERS]
    + [f"builtins.{n}" for n in ("set", "frozenset", "slice", "complex", "bytearray", "bytes",
       "int", "float", "str", "bool", "list", "dict", "tuple", "range", "object", "Ellipsis",
       "NotImplemented")]
    + [f"collections.{n}" for n in ("OrderedDict", "defaultdict", "deque", "Counter")]
    + [f"datetime.{n}" for n in ("datetime", "date", "time", "timedelta", "timezone")]
    + ["copyreg._reconstructor", "_codecs.encode", "functools.partial", "decimal.Decimal",
       "fractions.Fraction", "uuid.UUID", JOBLIB_WRAPPER]
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
    "cumsum sort unique clip round around asarray array"
)
_PANDAS_TOP = _words(
    "DataFrame Series Index RangeIndex MultiIndex CategoricalIndex DatetimeIndex "
    "TimedeltaIndex PeriodIndex IntervalIndex Categorical Timestamp Timedelta Period "
    "Interval NaT"
)
DENY_MODULES = _words(
    "os posix nt subprocess _posixsubprocess sys pty socket _socket shutil runpy pdb bdb code "
    "codeop ctypes _ctypes pickle _pickle cPickle marshal importlib imp pkgutil zipimport "
    "cProfile profile _lsprof timeit trace doctest pydoc webbrowser antigravity this asyncio "
    "multiprocessing threading _thread signal operator _operator types inspect dill "
    "cloudpickle tempfile glob io _io urllib urllib2 http httplib requests aiohttp ftplib "
    "smtplib telnetlib xmlrpc socketserver venv ensurepip pip setuptools distutils site "
    "idlelib tkinter turtle gc numpy.testing numpy.f2py numpy.distutils numpy.ctypeslib "
    "torch.hub torch.jit torch.package torch.ops torch.classes torch.utils.cpp_extension "
    "torch._dynamo torch._inductor pandas.io pandas.core.computation"
)
DANGEROUS_NAMES = _words(
    "eval exec execfile compile getattr setattr delattr __import__ open breakpoint input "
    "globals locals vars help exit quit apply reload system popen spawn spawnv spawnl execv "
    "execve execvp fork load loads read_pickle import_module resolve_name methodcaller "
    "attrgetter run runctx runcall call check_call check_output Popen remove unlink rmtree "
    "rmdir fdopen memmap fromfile loadtxt genfromtxt save savez savetxt tofile"
)
_NEVER_PARTS = frozenset({"tests", "testing", "_testing", "conftest", "io"})
_SKLEARN_NEVER = _words(
    "datasets externals discovery estimator_checks _show_versions _export _build_utils "
    "__check_build _joblib"
)
_SCIPY_OK = ("scipy.sparse", "scipy.spatial", "scipy.stats", "scipy.interpolate",
             "scipy.special", "scipy._lib.array_api_compat")  # fmt: skip
_IO_WORDS = ("load", "save", "read", "write", "open", "fetch", "download", "export", "dump")
DEFAULT_SEVERITY = "high"


def normalise(module: str, name: str) -> tuple[str, str]:
    """Apply pickle's Python 2 name mapping (``__builtin__`` -> ``builtins``, ...)."""
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

    def classify(self, module: str, name: str) -> tuple[str | None, str]:
        """``(None, why)`` if the global is allowed, else ``(severity, reason)``."""
        module, name = normalise(module, name)
        full = f"{module}.{name}"
        if not is_valid_global(module, name):
            return DEFAULT_SEVERITY, f"{full!r} is not a valid module and attribute path"
        if full in EXACT_ALLOWED:
            return None, "allowlisted"
        danger = _danger(module, name)
        if danger:
            return "critical", danger
        if "." in name:
            return DEFAULT_SEVERITY, f"{full} reaches an attribute through a dotted name"
        if self._extra_allows(module, full) or _rule_allows(module, name):
            return None, "allowlisted"
        return DEFAULT_SEVERITY, f"{full} is not on the allowlist"

    def allows(self, module: str, name: str) -> bool:
        return self.classify(module, name)[0] is None

    def _extra_allows(self, module: str, full: str) -> bool:
        for pattern in self.extra:
            prefix = pattern[:-2] if pattern.endswith(".*") else None
            if full == pattern or (
                prefix and (module == prefix or module.startswith(prefix + "."))
            ):
                return True
        return False


def _danger(module: str, name: str) -> str | None:
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


def _rule_allows(module: str, name: str) -> bool:
    parts = module.split(".")
    if _NEVER_PARTS.intersection(parts):
        return False
    root, classy = parts[0], name[:1].isupper()
    if root == "sklearn":
        return not _SKLEARN_NEVER.intersection(parts)
    if root == "numpy":
        return (module == "numpy.dtypes" and classy) or _numpy_allows(module, name)
    if root == "scipy":
        return module.startswith(_SCIPY_OK) and not name.lower().startswith(_IO_WORDS)
    if root == "pandas":
        if module == "pandas":
            return name in _PANDAS_TOP or name.endswith("Dtype")
        inside = module.startswith(("pandas.core.", "pandas._libs.", "pandas.arrays"))
        return inside and (classy or "unpickle" in name or name in ("_new_Index", "new_block"))
    if module in ("torch", "torch.cuda"):
        return name in _TORCH_NAMES or (classy and name.endswith(("Storage", "Tensor")))
    return root in ("xgboost", "lightgbm", "catboost") and classy


def _numpy_allows(module: str, name: str) -> bool:
    if module != "numpy":
        return False
    if name in _NUMPY_FUNCS:
        return True
    import numpy

    obj = vars(numpy).get(name)  # no getattr: numpy's lazy __getattr__ imports submodules
    return isinstance(obj, numpy.ufunc) or (
        isinstance(obj, type) and issubclass(obj, numpy.generic)
    )


DEFAULT_ALLOWLIST = Allowlist()
