"""Red team: TensorFlow SavedModel ops that read or write files but were not on the list.

The SavedModel check (after modelscan's ``ReadFile``/``WriteFile`` denylist) missed ops that
take a path or pattern themselves: ``RecordInput`` (reads every file matching a glob),
``GenerateVocabRemapping`` and ``LoadAndRemapMatrix`` (read vocabulary and checkpoint files
by path), ``DistributedSave`` (writes a dataset to a directory), the v1 reader ops that read
through a reader resource, the summary writers' ``Write*Summary``/``ImportEvent`` and
``FileSystemSetConfiguration`` (re-points a filesystem, e.g. an S3 endpoint). Each passed the
gate, modelscan included, before the fix.

Write-up: Protect AI's modelscan, whose SavedModel scanner flags ``ReadFile`` and
``WriteFile`` as unsafe operators: the same file read/write primitive reached by other ops.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import scan_model
from tests.core.scan.malicious_corpus import saved_model_dir, write_dir

FILE_OPS = ["RecordInput", "GenerateVocabRemapping", "LoadAndRemapMatrix", "DistributedSave",
            "ReaderRead", "ReaderReadUpToV2", "WriteScalarSummary", "ImportEvent",
            "FileSystemSetConfiguration", "SnapshotChunkDataset"]  # fmt: skip


@pytest.mark.parametrize("op", FILE_OPS)
def test_savedmodel_file_op_in_graph_or_function_fails(op: str, tmp_path: Path) -> None:
    """The op fails the gate in the graph and inside a serving function alike."""
    graph = write_dir(saved_model_dir([op], {}), tmp_path / "graph")
    function = write_dir(saved_model_dir([], {"__inference_serve_7": [op]}), tmp_path / "fn")
    assert scan_model(graph).verdict is Verdict.FAIL
    assert scan_model(function).verdict is Verdict.FAIL
