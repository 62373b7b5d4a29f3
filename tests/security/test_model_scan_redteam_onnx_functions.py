"""Red team: ONNX external data held by tensors outside the main graph.

``onnx.load`` resolves external data for the attribute tensors of model-local functions
(``ModelProto.functions``) as well as the graph's; our path check walked only the graph, so
such tensors were left to ``onnx.checker`` alone, and a benign model keeping a function's
constant next to it was checked in memory, where its external file cannot be found.

Advisory: CVE-2024-27318 (ONNX external data path traversal: ``..`` and symlinks reading
files outside the model directory).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import scan_model


def _external(location: str) -> object:
    import numpy as np
    from onnx import TensorProto, numpy_helper

    tensor = numpy_helper.from_array(np.ones((2,), np.float32), "k")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "8")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def function_model(location: str) -> bytes:
    """A graph calling a local function whose ``Constant`` lives in external data."""
    from onnx import TensorProto, helper

    opsets = [helper.make_opsetid("", 17)]
    const = helper.make_node("Constant", [], ["k"], value=_external(location))
    add = helper.make_node("Add", ["x", "k"], ["y"])
    func = helper.make_function("custom", "AddK", ["x"], ["y"], [const, add], opsets)
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("AddK", ["x"], ["y"], domain="custom")], "g",
        [value("x", TensorProto.FLOAT, [2])], [value("y", TensorProto.FLOAT, [2])],
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[*opsets, helper.make_opsetid("custom", 1)], functions=[func]
    )
    return model.SerializeToString()


def _model_dir(tmp_path: Path, location: str) -> Path:
    (tmp_path / "secret.bin").write_bytes(b"SECRETS!")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(function_model(location))
    return folder


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/hostname", "link.bin"])
def test_function_external_data_outside_the_model_fails(location: str, tmp_path: Path) -> None:
    """A function constant reading ``..``, an absolute path or a symlink out fails, by our
    own path check (named in the findings), not only by onnx's checker."""
    folder = _model_dir(tmp_path, location)
    if location == "link.bin":
        os.symlink(tmp_path / "secret.bin", folder / "link.bin")
    result = scan_model(folder)
    assert result.verdict is Verdict.FAIL
    assert any("external data" in f["reason"] for f in result.findings), result.findings


def test_function_external_data_inside_the_model_passes(tmp_path: Path) -> None:
    """No false positive: a function constant stored next to the model passes."""
    folder = _model_dir(tmp_path, "weights.bin")
    (folder / "weights.bin").write_bytes(b"\x00\x00\x80?" * 2)
    result = scan_model(folder)
    assert result.verdict in (Verdict.PASS, Verdict.WARN), result.findings
