"""ONNX models: the checker, and external data resolved inside the model directory.

Every tensor stored outside the model (initializers, sparse initializers, ``Constant`` and
other node attributes, in subgraphs too) names a ``location``. It must be a relative path
without ``..``, resolve (symlinks followed) to a regular file inside the model's directory,
and its ``offset``/``length`` must lie within that file. The model is then checked by
``onnx.checker`` from its path, so that the checker reads the same external files. A model
held only in memory (a zip member, ``safe_load`` bytes) cannot have its external data
resolved: that is an error, not a pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any


@dataclass
class OnnxReport:
    """What checking one ONNX model found."""

    error: str | None = None
    problems: list[str] = field(default_factory=list)
    external_files: set[str] = field(default_factory=set)  # relative to the scan root


def check_onnx(data: bytes, path: Path | None, source: str) -> OnnxReport:
    """Check the model ``data`` read from ``path`` (None when it is not a file on disk)."""
    import onnx

    report = OnnxReport()
    try:
        model = onnx.load_model_from_string(data)
    except Exception as err:  # onnx raises several unrelated types for bad models
        report.error = f"invalid ONNX model ({err})"
        return report
    tensors = [*_tensors(model.graph), *(t for f in model.functions for t in _node_tensors(f.node))]
    external = [t for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]
    if external and path is None:
        report.error = "ONNX external data cannot be resolved outside a model directory"
        return report
    for tensor in external:
        _check_location(tensor, path, source, report)  # type: ignore[arg-type]
    if report.problems:
        return report
    try:
        onnx.checker.check_model(str(path) if external else model)
    except Exception as err:
        report.error = f"invalid ONNX model ({err})"
    return report


def _check_location(tensor: Any, path: Path, source: str, report: OnnxReport) -> None:
    info = {entry.key: entry.value for entry in tensor.external_data}
    where = info.get("location", "")
    name = tensor.name or "<unnamed>"
    pure = PurePosixPath(where.replace("\\", "/"))
    if not where or pure.is_absolute() or os.path.isabs(where) or ".." in pure.parts:
        report.problems.append(f"tensor {name!r}: external data {where!r} points outside the model")
        return
    folder = path.parent.resolve()
    target = (path.parent / pure).resolve()
    if not target.is_relative_to(folder):
        report.problems.append(
            f"tensor {name!r}: external data {where!r} resolves outside the model"
        )
        return
    if not target.is_file():
        report.problems.append(f"tensor {name!r}: external data file {where!r} is missing")
        return
    try:
        offset, length = int(info.get("offset", 0)), int(info.get("length", -1))
    except ValueError:
        report.problems.append(f"tensor {name!r}: external data offset/length are not integers")
        return
    size = target.stat().st_size
    if offset < 0 or offset > size or (length >= 0 and offset + length > size):
        report.problems.append(f"tensor {name!r}: external data range runs past {where!r}")
        return
    base = PurePosixPath(source).parent
    report.external_files.add(str(base / pure) if str(base) != "." else str(pure))


def _tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _node_tensors(graph.node)


def _node_tensors(nodes: Any) -> Iterator[Any]:
    """Tensors held by node attributes (of a graph or of a model-local function)."""
    for node in nodes:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            for sparse in [attribute.sparse_tensor, *attribute.sparse_tensors]:
                yield sparse.values
                yield sparse.indices
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for sub in attribute.graphs:
                yield from _tensors(sub)
