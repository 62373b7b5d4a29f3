"""Policy as data: one YAML file says which gates are required and their thresholds.

The file has a fixed top level::

    version: 1
    required_gates: [data_validation, model_scan]
    gates:
      data_validation: {...}   # each gate module reads its own section
    signing: {...}

Each gate module turns its section into a frozen dataclass with :func:`section_config`,
which rejects unknown keys and wrong types with a message that names the field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mlsecops_provider.core.errors import PolicyError
from mlsecops_provider.core.settings import packaged_file

T = TypeVar("T")
TOP_LEVEL_KEYS = {"version", "required_gates", "gates", "signing"}
DEFAULT_POLICY_PARTS = ("policies", "default.yaml")


@dataclass(frozen=True)
class Policy:
    """A loaded, validated policy and the digest of the bytes it came from."""

    required_gates: tuple[str, ...] = ()
    gates: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    signing: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<defaults>"
    sha256: str = ""

    def section(self, gate: str) -> Mapping[str, Any]:
        return self.gates.get(gate, {})

    def config(self, gate: str, cls: type[T]) -> T:
        """The gate's section as ``cls`` (a frozen dataclass), validated."""
        return section_config(cls, self.section(gate), f"{self.source}: gates.{gate}")


def load_policy(path: str | Path | None = None) -> Policy:
    """Load a policy file (default: the shipped ``include/policies/default.yaml``)."""
    import yaml

    policy_path = Path(path) if path is not None else packaged_file(*DEFAULT_POLICY_PARTS)
    try:
        raw = policy_path.read_bytes()
    except OSError as err:
        raise PolicyError(f"{policy_path}: cannot read policy ({err.strerror})") from err
    try:
        data = yaml.safe_load(raw) or {}
    except yaml.YAMLError as err:  # one line: where and what, not YAML's multi-line context
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise PolicyError(f"{policy_path}: not valid YAML{where}: {problem}") from err
    return parse_policy(data, str(policy_path), hashlib.sha256(raw).hexdigest())


def parse_policy(data: Any, source: str = "<inline>", sha256: str = "") -> Policy:
    if not isinstance(data, Mapping):
        raise PolicyError(f"{source}: a policy must be a mapping at the top level")
    unknown = set(data) - TOP_LEVEL_KEYS
    if unknown:
        raise PolicyError(f"{source}: unknown top-level field(s) {sorted(unknown)}")
    if data.get("version", 1) != 1:
        raise PolicyError(f"{source}: version: only version 1 is supported")
    required = data.get("required_gates", [])
    if not isinstance(required, list) or not all(isinstance(g, str) for g in required):
        raise PolicyError(f"{source}: required_gates: must be a list of gate names")
    gates = data.get("gates", {}) or {}
    if not isinstance(gates, Mapping) or not all(isinstance(v, Mapping) for v in gates.values()):
        raise PolicyError(f"{source}: gates: must map gate names to mappings")
    signing = data.get("signing", {}) or {}
    if not isinstance(signing, Mapping):
        raise PolicyError(f"{source}: signing: must be a mapping")
    return Policy(tuple(required), dict(gates), dict(signing), source, sha256)


def section_config(cls: type[T], section: Mapping[str, Any], where: str) -> T:
    """Build the frozen dataclass ``cls`` from a mapping, naming any bad field."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(section) - names
    if unknown:
        raise PolicyError(f"{where}: unknown field(s) {sorted(unknown)}")
    values = {}
    for name, value in section.items():
        values[name] = _coerce(value, hints[name], f"{where}.{name}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise PolicyError(f"{where}: {err}") from err


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is type(None) and value is None:
                return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except PolicyError:
                continue
        raise PolicyError(f"{where}: {value!r} is not a valid {hint}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise PolicyError(f"{where}: expected a list, got {type(value).__name__}")
        item = args[0] if args else Any
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict or origin is Mapping:
        if not isinstance(value, Mapping):
            raise PolicyError(f"{where}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (
        isinstance(hint, type)
        and not isinstance(value, hint)
        or (hint in (int, float) and isinstance(value, bool))
    ):
        raise PolicyError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
    return value
