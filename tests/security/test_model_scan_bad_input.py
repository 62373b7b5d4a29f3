"""Bad input stays a one-line error (or a finding) within the policy's limits: truncated
files of every format, a safetensors header claiming a huge length, decompression bombs
(gzip, zip members, many overlapping zip entries), zips nested past ``max_nesting`` and
deeply nested JSON. Nothing raises, nothing passes, every reason is a single line.

Write-ups: David Fifield's "A better zip bomb" (overlapping zip entries), safetensors'
header-length limit (huggingface/safetensors: headers above 100 MB are refused), and
CWE-409 (improper handling of highly compressed data).
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import ModelScanConfig, scan_model
from tests.core.scan.malicious_corpus import (
    CHATML,
    benign_corpus,
    gguf_file,
    torch_tar_members,
    v7_tar,
)

LIMITS = ModelScanConfig(max_decompressed_mb=1, max_nesting=3)


def _scan(tmp_path: Path, name: str, data: bytes) -> tuple[Verdict, list[dict]]:
    path = tmp_path / name
    path.write_bytes(data)
    started = time.monotonic()
    result = scan_model(path, LIMITS)
    assert time.monotonic() - started < 30
    assert all("\n" not in f["reason"] for f in result.findings)
    return result.verdict, result.findings


def _truncated() -> dict[str, bytes]:
    corpus = benign_corpus()
    names = ("sklearn_pickle_p5", "sklearn_joblib", "torch_zip", "safetensors", "numpy_npy",
             "sklearn_skops", "keras_standard_layers", "sklearn_joblib_gzip")  # fmt: skip
    cases = {name: corpus[name][1] for name in names}
    cases["gguf"], cases["v7_tar"] = gguf_file(CHATML), v7_tar(torch_tar_members())
    return {name: data[: len(data) * 2 // 3] for name, data in cases.items()}


@pytest.mark.parametrize("name", sorted(_truncated()))
def test_truncated_file_is_not_a_pass(name: str, tmp_path: Path) -> None:
    """Two thirds of a valid file: an error or a finding, never a pass."""
    verdict, findings = _scan(tmp_path, "model.bin", _truncated()[name])
    assert verdict in (Verdict.ERROR, Verdict.FAIL, Verdict.WARN), findings
    assert findings


def test_safetensors_header_length_beyond_the_limit(tmp_path: Path) -> None:
    """A header length of 2**60 (or 200 MB in a small file) is refused without reading it."""
    for length in (1 << 60, 200 << 20):
        verdict, _ = _scan(tmp_path, "m.safetensors", struct.pack("<Q", length) + b'{"a":' * 20)
        assert verdict is Verdict.ERROR


def test_decompression_bombs(tmp_path: Path) -> None:
    """gzip and zip-member bombs stop at max_decompressed_mb."""
    assert _scan(tmp_path, "b.gz", gzip.compress(bytes(8 << 20)))[0] is Verdict.ERROR
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("weights.bin", bytes(8 << 20))
    assert _scan(tmp_path, "b.zip", buffer.getvalue())[0] is Verdict.ERROR


def test_overlapping_zip_entries_count_against_one_budget(tmp_path: Path) -> None:
    """Many central-directory entries sharing one compressed member (Fifield's bomb): each
    is under the limit, their sum is not."""
    member = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = member.compress(bytes(600 << 10)) + member.flush()
    name = b"a.txt"
    local = struct.pack(
        "<4s5H3L2H",
        b"PK\x03\x04",
        20,
        0,
        8,
        0,
        0,
        zlib.crc32(bytes(600 << 10)),
        len(payload),
        600 << 10,
        len(name),
        0,
    )
    central = b""
    for index in range(4):
        entry = f"a{index}.txt".encode()
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0,
                               zlib.crc32(bytes(600 << 10)), len(payload), 600 << 10,
                               len(entry), 0, 0, 0, 0, 0, 0) + entry  # fmt: skip
    body = local + name + payload
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 4, 4, len(central), len(body), 0)
    verdict, findings = _scan(tmp_path, "overlap.zip", body + central + end)
    assert verdict in (Verdict.ERROR, Verdict.FAIL)
    assert any("in total" in f["reason"] for f in findings)


def test_zip_nested_past_the_limit(tmp_path: Path) -> None:
    """A zip in a zip in a zip ... (a recursive archive) stops at max_nesting."""
    data = b"plain text\n"
    for _ in range(6):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("inner.zip", data)
        data = buffer.getvalue()
    verdict, findings = _scan(tmp_path, "nested.zip", data)
    assert verdict is Verdict.ERROR
    assert any("nested deeper" in f["reason"] for f in findings)


def test_deeply_nested_json_and_pickle(tmp_path: Path) -> None:
    """Nesting that would overflow a recursive parser is an error or finding, not a crash."""
    deep_json = b"[" * 200_000 + b"]" * 200_000
    keras = {"class_name": "Sequential", "config": json.loads("[" * 50 + "]" * 50)}
    assert _scan(tmp_path, "config.json", deep_json)[0] in (Verdict.ERROR, Verdict.PASS)
    assert _scan(tmp_path, "k.json", json.dumps(keras).encode())[0] is Verdict.PASS
    deep_pickle = b"\x80\x04" + b"(" * 100_000 + b"l" * 100_000 + b"."
    assert _scan(tmp_path, "deep.pkl", deep_pickle)[0] is not Verdict.ERROR
