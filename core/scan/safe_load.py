"""Load a model only after scanning exactly the bytes that will be loaded.

The bytes are read once into memory (with their digest checked when one is given), scanned,
and then loaded from that same buffer: there is no second read of the file, so nothing can
be swapped between the check and the use. Pickles are loaded by an unpickler that enforces
the scanner's rule itself (:mod:`pickle.restricted`: allowlisted globals only, calls only of
those, no BUILD state that runs code), so a scan miss cannot become code execution here.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from mlsecops_provider.core.errors import DataError, UnsafeModelError
from mlsecops_provider.core.scan.containers import decompress
from mlsecops_provider.core.scan.formats import Blob, parse_npy_header
from mlsecops_provider.core.scan.gate import ModelScanConfig, scan_model_bytes
from mlsecops_provider.core.scan.pickle.allowlist import Allowlist
from mlsecops_provider.core.scan.pickle.restricted import restricted_unpickler
from mlsecops_provider.core.storage import (
    S3ClientFactory,
    normalise_uri,
    read_verified,
    storage_for,
)

_SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?",
}  # fmt: skip


def safe_load(
    uri: str,
    expected_sha256: str | None = None,
    config: ModelScanConfig | None = None,
    s3_client_factory: S3ClientFactory | None = None,
) -> Any:
    """Read the model at ``uri`` once, scan those bytes and load them if they are safe."""
    uri = normalise_uri(uri)
    data = read_verified(storage_for(uri, s3_client_factory), uri, expected_sha256)
    return safe_loads(data, PurePosixPath(unquote(urlparse(uri).path)).name, config)


def safe_loads(data: bytes, name: str = "model", config: ModelScanConfig | None = None) -> Any:
    """Scan ``data`` and load it from the same buffer; raise UnsafeModelError if it is unsafe."""
    config = config or ModelScanConfig()
    result, outcome = scan_model_bytes(data, name, config)
    if result.verdict.blocks:
        shown = "; ".join(f"{f['severity']}: {f['reason']}" for f in result.findings[:3])
        raise UnsafeModelError(f"{name}: refused to load, {result.message} ({shown})")
    fmt = outcome.formats.get(PurePosixPath(name).name or "model", "unknown")
    return _load(data, fmt, config)


def _load(data: bytes, fmt: str, config: ModelScanConfig) -> Any:
    outer, _, inner = fmt.partition(">")
    if inner:
        limit = config.max_decompressed_mb << 20
        return _load(decompress(Blob(data), outer, limit), inner, config)
    loaders: dict[str, Callable[[bytes, Allowlist], Any]] = {
        "pickle": _load_pickle, "npy": _load_npy, "skops": _load_skops,
        "safetensors": _load_safetensors, "json": lambda d, a: json.loads(d),
        "text": lambda d, a: d.decode("utf-8"), "zip": _load_npz,
    }  # fmt: skip
    if fmt not in loaders:
        raise DataError(f"safe_load cannot load {fmt} models (scanned safe, but no safe loader)")
    return loaders[fmt](data, config.allowlist)


def _load_pickle(data: bytes, allow: Allowlist) -> Any:
    """Plain pickles and joblib files (whose arrays sit inline) through joblib's unpickler."""
    from joblib.numpy_pickle import NumpyUnpickler

    handle = io.BytesIO(data)
    unpickler = restricted_unpickler(NumpyUnpickler, allow)("", handle, True)
    return unpickler.load()


def _load_npy(data: bytes, allow: Allowlist) -> Any:
    import numpy as np

    header = parse_npy_header(Blob(data))
    if header.has_object:
        handle = io.BytesIO(data[header.data_offset :])
        return restricted_unpickler(pickle.Unpickler, allow)(handle).load()
    return np.load(io.BytesIO(data), allow_pickle=False)


def _load_npz(data: bytes, allow: Allowlist) -> dict[str, Any]:
    import numpy as np

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (ValueError, OSError) as err:
        raise DataError(f"safe_load can only load zips of plain .npy arrays ({err})") from err


def _load_skops(data: bytes, allow: Allowlist) -> Any:
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=data)
    refused = [t for t in untrusted if not allow.allows(*t.rsplit(".", 1))]
    if refused:
        raise UnsafeModelError(f"skops types outside the allowlist: {refused}")
    return skops.io.loads(data, trusted=untrusted)


def _load_safetensors(data: bytes, allow: Allowlist) -> dict[str, Any]:
    import numpy as np

    (length,) = struct.unpack("<Q", data[:8])
    header, base, arrays = json.loads(data[8 : 8 + length]), 8 + length, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _SAFETENSORS_DTYPES:
            raise DataError(f"safetensors tensor {name!r}: dtype {info['dtype']} has no numpy type")
        begin, end = info["data_offsets"]
        flat = np.frombuffer(data[base + begin : base + end], _SAFETENSORS_DTYPES[info["dtype"]])
        arrays[name] = flat.reshape(info["shape"])
    return arrays
