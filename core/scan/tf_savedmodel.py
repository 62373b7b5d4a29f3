"""TensorFlow SavedModel (``saved_model.pb``) read from the protobuf wire format, without
TensorFlow: every op of every graph and function is checked against a list of ops that
read or write files, run Python, or reach the network (modelscan checks ``ReadFile`` and
``WriteFile``; this list is longer). The checkpoint ops a SavedModel's own save and restore
functions use are allowed there only.

Layout (tensorflow/core/protobuf): SavedModel{1: schema_version, 2: MetaGraphDef*};
MetaGraphDef{2: GraphDef}; GraphDef{1: NodeDef*, 2: FunctionDefLibrary};
FunctionDefLibrary{1: FunctionDef*}; FunctionDef{1: OpDef{1: name}, 3: NodeDef*};
NodeDef{1: name, 2: op}. ``keras_metadata.pb`` holds Keras layer configs as JSON strings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

FILE_OPS = frozenset(
    [
        "ReadFile",
        "WriteFile",
        "MatchingFiles",
        "MatchingFilesDataset",
        "ImmutableConst",
        "PrintV2",
        "TFRecordDataset",
        "TFRecordDatasetV2",
        "TextLineDataset",
        "TextLineDatasetV2",
        "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2",
        "ExperimentalCSVDataset",
        "CSVDataset",
        "CSVDatasetV2",
        "LMDBDataset",
        "ExperimentalLMDBDataset",
        "SqlDataset",
        "ExperimentalSqlDataset",
        "SnapshotDataset",
        "SnapshotDatasetV2",
        "SaveDataset",
        "SaveDatasetV2",
        "LoadDataset",
        "DatasetToTFRecord",
        "ExperimentalDatasetToTFRecord",
        "WholeFileReader",
        "WholeFileReaderV2",
        "TextLineReader",
        "TextLineReaderV2",
        "TFRecordReader",
        "TFRecordReaderV2",
        "FixedLengthRecordReader",
        "FixedLengthRecordReaderV2",
        "LMDBReader",
        "IdentityReader",
        "ReaderReadV2",
        "WriteSummary",
        "CreateSummaryFileWriter",
        "CreateSummaryDbWriter",
        "WriteAudioSummary",
        "WriteImageSummary",
        "InitializeTableFromTextFile",
        "InitializeTableFromTextFileV2",
        "DecodeProtoV2",
        "Save",
        "SaveV2",
        "SaveSlices",
        "Restore",
        "RestoreV2",
        "RestoreSlice",
        "MergeV2Checkpoints",
        "ShardedFilename",
        "ShardedFilespec",
        # read or write files by a path or pattern given to the op (or its reader resource)
        "RecordInput",
        "GenerateVocabRemapping",
        "LoadAndRemapMatrix",
        "DistributedSave",
        "ExperimentalMatchingFilesDataset",
        "SnapshotChunkDataset",
        "SnapshotDatasetReader",
        "SnapshotNestedDatasetReader",
        "ListSnapshotChunksDataset",
        "ReaderRead",
        "ReaderReadUpTo",
        "ReaderReadUpToV2",
        "ReaderRestoreState",
        "ReaderRestoreStateV2",
        "WriteScalarSummary",
        "WriteHistogramSummary",
        "WriteRawProtoSummary",
        "WriteGraphSummary",
        "ImportEvent",
        "FileSystemSetConfiguration",
    ]
)
PROCESS_OPS = frozenset(["PyFunc", "PyFuncStateless", "EagerPyFunc"])
NETWORK_OPS = frozenset(
    [
        "DebugIdentity",
        "DebugIdentityV2",
        "DebugIdentityV3",
        "DebugNanCount",
        "DebugNumericSummary",
        "DebugNumericSummaryV2",
        "Rpc",
        "TryRpc",
        "GenerateBigQueryReaderPartitions",
        "BigQueryReader",
        "BigtableClient",
        "DataServiceDataset",
        "DataServiceDatasetV2",
        "DataServiceDatasetV3",
        "DataServiceDatasetV4",
        "RegisterDataset",
        "RegisterDatasetV2",
        "CollectiveBcastSend",
        "CollectiveBcastRecv",
        "_Send",
        "_Recv",
        "_HostSend",
        "_HostRecv",
    ]
)
CHECKPOINT_OPS = frozenset(
    [
        "SaveV2",
        "RestoreV2",
        "MergeV2Checkpoints",
        "ShardedFilename",
        "ShardedFilespec",
        "Save",
        "Restore",
        "RestoreSlice",
        "SaveSlices",
    ]
)


class WireError(ValueError):
    """Not a well-formed protobuf message."""


def fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of one message; raises WireError if malformed."""
    pos, size = 0, len(data)
    while pos < size:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > size:
                raise WireError("length-delimited field runs past the end")
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire in (1, 5):
            step = 8 if wire == 1 else 4
            if pos + step > size:
                raise WireError("fixed field runs past the end")
            yield number, wire, data[pos : pos + step]
            pos += step
        else:
            raise WireError(f"unsupported wire type {wire}")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def _sub(data: bytes, number: int) -> Iterator[bytes]:
    for num, wire, value in fields(data):
        if num == number and wire == 2 and isinstance(value, bytes):
            yield value


def _text(data: bytes, number: int) -> str:
    return next((v.decode("utf-8", "replace") for v in _sub(data, number)), "")


def looks_like_savedmodel(data: bytes) -> bool:
    """Top-level fields are only 1 (varint) and 2 (MetaGraphDefs holding a GraphDef)."""
    try:
        top = list(fields(data))
        if not top or {n for n, _, _ in top} - {1, 2} or top[0][:2] != (1, 0):
            return False
        metas = [v for n, w, v in top if n == 2 and isinstance(v, bytes)]
        return bool(metas) and all(list(_sub(meta, 2)) or list(_sub(meta, 1)) for meta in metas)
    except WireError:
        return False


def savedmodel_ops(data: bytes) -> Iterator[tuple[str, str, str]]:
    """(function or '' for the main graph, node name, op) for every node."""
    for meta in _sub(data, 2):
        for graph in _sub(meta, 2):
            for node in _sub(graph, 1):
                yield "", _text(node, 1), _text(node, 2)
            for library in _sub(graph, 2):
                for function in _sub(library, 1):
                    name = next((_text(sig, 1) for sig in _sub(function, 1)), "")
                    for node in _sub(function, 3):
                        yield name, _text(node, 1), _text(node, 2)


def op_findings(data: bytes) -> list[tuple[str, str, str]]:
    """(severity, op, reason) for every dangerous op of a SavedModel."""
    found: dict[tuple[str, str], tuple[str, str, str]] = {}
    for function, node, op in savedmodel_ops(data):
        where = f"function {function}" if function else "the main graph"
        if op in CHECKPOINT_OPS and _is_checkpointing(function, node):
            continue
        if op in PROCESS_OPS:
            found.setdefault((op, where), ("critical", op, f"op {op} runs Python ({where})"))
        elif op in FILE_OPS:
            found.setdefault((op, where), ("high", op, f"op {op} reads or writes files ({where})"))
        elif op in NETWORK_OPS:
            found.setdefault((op, where), ("high", op, f"op {op} reaches the network ({where})"))
    return list(found.values())


def _is_checkpointing(function: str, node: str) -> bool:
    if function:
        return function.startswith(("__inference__traced_save", "__inference__traced_restore"))
    return node.split("/")[0] in ("save", "saver") or node.startswith("save_")


def json_strings(data: bytes, depth: int = 0) -> Iterator[object]:
    """JSON objects found in any string field, at any depth (``keras_metadata.pb``)."""
    if depth > 8:
        return
    try:
        items = list(fields(data))
    except WireError:
        return
    for _, wire, value in items:
        if wire != 2 or not isinstance(value, bytes):
            continue
        if value[:1] == b"{":
            try:
                yield json.loads(value)
                continue
            except ValueError:
                pass
        yield from json_strings(value, depth + 1)
