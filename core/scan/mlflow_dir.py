"""MLflow model directories: what ``mlflow.pyfunc.load_model`` will import and run.

Every ``MLmodel`` file is read (safe YAML). Its flavours must be on the policy's allowlist and
``python_function.loader_module`` one of the known MLflow loaders: a custom loader module is
imported from the model's ``code/`` directory at load time. Custom code is a finding: a
``code/`` directory (or ``code`` paths of any flavour), a custom ``loader_module``, a
``python_model`` (a cloudpickled ``PythonModel``) and ``skops_trusted_types`` outside the
pickle allowlist. Any path in a flavour's configuration that leaves the model directory
(absolute, or through ``..``) is a finding too: MLflow would load a file never scanned.
The policy may allow one exact set of custom code by its digest
(``allowed_code_digests``), which the finding names: SHA-256 over the loader module's name
and the path and SHA-256 of every custom-code file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from mlsecops_provider.core.scan.formats import ERROR, Finding
from mlsecops_provider.core.scan.pickle.allowlist import Allowlist

DEFAULT_FLAVORS = (
    "python_function", "sklearn", "onnx", "keras", "tensorflow", "pytorch", "xgboost",
    "lightgbm", "catboost", "transformers", "sentence_transformers", "spacy", "statsmodels",
    "prophet", "h2o", "spark", "paddle",
)  # fmt: skip
DEFAULT_LOADERS = tuple(f"mlflow.{name}" for name in DEFAULT_FLAVORS if name != "python_function")
PYTHON_MODEL_LOADER = "mlflow.pyfunc.model"


@dataclass
class CustomCode:
    """The custom code of one MLflow model directory."""

    root: str
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256
    reasons: list[str] = field(default_factory=list)
    loader: str = ""

    @property
    def digest(self) -> str:
        lines = [f"loader_module {self.loader}"]
        lines += [f"{path} {digest}" for path, digest in sorted(self.files.items())]
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def mlflow_findings(
    texts: dict[str, bytes],
    digests: dict[str, str],
    allow: Allowlist,
    flavors: tuple[str, ...] = DEFAULT_FLAVORS,
    loaders: tuple[str, ...] = DEFAULT_LOADERS,
    allowed_digests: tuple[str, ...] = (),
) -> tuple[list[Finding], set[str]]:
    """Findings for every ``MLmodel`` in ``texts`` (source -> bytes), and the files of
    custom code the policy allowed by digest (their own findings are then waived)."""
    found, waived = list[Finding](), set[str]()
    for source, text in sorted(texts.items()):
        root = str(PurePosixPath(source).parent)
        root = "" if root == "." else root + "/"
        try:
            spec = _parse(text)
        except ValueError as err:
            found.append(Finding(source, ERROR, f"MLmodel cannot be read: {err}"))
            continue
        code = CustomCode(root)
        found += _flavor_findings(source, spec, code, allow, flavors, loaders)
        for rel in [*code.files, "code"]:
            code.files.pop(rel, None)
            for path, digest in digests.items():
                if path == root + rel or path.startswith(root + rel.rstrip("/") + "/"):
                    code.files[path[len(root) :]] = digest
        if any(p.startswith("code/") for p in code.files) and not code.reasons:
            code.reasons.append("a code/ directory (put on sys.path by pyfunc)")
        if not code.reasons:
            continue
        if code.digest in allowed_digests:
            waived |= {root + path for path in code.files}
            continue
        why = "; ".join(code.reasons)
        reason = (
            f"MLflow model runs custom code at load time ({why}); allow it by digest with "
            f"allowed_code_digests: [{code.digest}]"
        )
        found.append(Finding(source, "high", reason, global_name=code.loader or None))
    return found, waived


def _parse(text: bytes) -> dict[str, Any]:
    import yaml

    try:
        spec = yaml.safe_load(text.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"not YAML ({type(err).__name__})") from err
    if not isinstance(spec, dict) or not isinstance(spec.get("flavors"), dict):
        raise ValueError("no flavors mapping")
    return spec


def _escaping_paths(value: Any, key: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """(key, value) of every string in a flavour's configuration that, read as a path, leaves
    the model directory: absolute (``/x``, ``~``, ``C:``, ``file:``) or through ``..``.
    MLflow joins them to the model directory (``data``, ``pickled_model``, ``model_path``,
    ...) and ``os.path.join`` lets either escape, so a scanned directory would load an
    unscanned file."""
    if depth > 16 or key.endswith("model_config"):
        return []
    if isinstance(value, dict):
        return [
            hit
            for k, v in value.items()
            for hit in _escaping_paths(v, f"{key}.{k}".strip("."), depth + 1)
        ]
    if isinstance(value, list):
        return [hit for v in value for hit in _escaping_paths(v, key, depth + 1)]
    if not isinstance(value, str):
        return []
    text = value.strip().replace("\\", "/")
    pure = PurePosixPath(text)
    drive = len(text) > 1 and text[1] == ":" and text[0].isalpha()
    absolute = pure.is_absolute() or text.startswith(("~", "file:")) or drive
    return [(key, value)] if absolute or ".." in pure.parts else []


def _flavor_findings(
    source: str, spec: dict[str, Any], code: CustomCode, allow: Allowlist,
    flavors: tuple[str, ...], loaders: tuple[str, ...],
) -> list[Finding]:  # fmt: skip
    found = []
    for name, flavor in spec["flavors"].items():
        if name not in flavors:
            found.append(Finding(source, "high", f"MLflow flavour {name!r} is not allowed"))
        flavor = flavor if isinstance(flavor, dict) else {}
        for key, value in _escaping_paths(flavor):
            reason = f"{name}.{key} {value!r} points outside the model directory (never scanned)"
            found.append(Finding(source, "high", reason))
        paths = flavor.get("code")
        for path in [paths] if isinstance(paths, str) else paths or []:
            code.reasons.append(f"{name}.code {path!r}")
            code.files.setdefault(str(path), "")
        for trusted in flavor.get("skops_trusted_types") or []:
            parts = str(trusted).rsplit(".", 1)
            if len(parts) != 2 or not allow.allows(parts[0], parts[1]):
                found.append(Finding(source, "high", f"skops_trusted_types trusts {trusted!r}"))
    pyfunc = spec["flavors"].get("python_function")
    if isinstance(pyfunc, dict):
        loader = str(pyfunc.get("loader_module") or "")
        code.loader = loader
        if pyfunc.get("python_model") or loader == PYTHON_MODEL_LOADER:
            code.reasons.append(f"python_model {pyfunc.get('python_model')!r} (cloudpickled code)")
            model = pyfunc.get("python_model")
            if isinstance(model, str):
                code.files.setdefault(model, "")
        elif loader and loader not in loaders:
            code.reasons.append(f"loader_module {loader!r} is not an MLflow loader")
    return found
