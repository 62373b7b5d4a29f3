"""Common model formats beyond pickles and zips are read, not refused: legacy tar torch
checkpoints (old V7 tar headers too), GGUF (metadata and Jinja chat templates) and TensorFlow
SavedModel (ops), each with its attack caught; anything else unknown still fails closed.

Write-ups: CVE-2024-34359 ("Llama Drama", llama-cpp-python: server-side template injection
through a GGUF ``tokenizer.chat_template``), modelscan's SavedModel check of ``ReadFile`` and
``WriteFile`` ops (extended here to file, Python and network ops), and torch's ``legacy_load``
(tar checkpoints whose ``pickle`` member is unpickled).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import scan_model
from tests.core.scan.malicious_corpus import (
    ATTR_FILTER,
    CHATML,
    LLAMA_DRAMA,
    gguf_file,
    glob,
    os_system_pickle,
    saved_model,
    saved_model_dir,
    torch_tar_members,
    tup,
    ustar,
    ustr,
    v7_tar,
    write_dir,
)


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("tar", [v7_tar, ustar])
def test_legacy_tar_torch_checkpoint_passes(tar, tmp_path: Path) -> None:
    """A benign legacy tar checkpoint (V7 or ustar headers) is read member by member."""
    result = scan_model(_file(tmp_path, "model.pt", tar(torch_tar_members())))
    assert result.verdict is Verdict.PASS, result.findings
    assert result.metrics["formats"]["model.pt"] == "torch_tar"


@pytest.mark.parametrize("tar", [v7_tar, ustar])
def test_legacy_tar_torch_payloads_are_found(tar, tmp_path: Path) -> None:
    """A payload in the main pickle or in a storage header pickle fails the scan."""
    evil_args = b"\x80\x02" + tup(ustr("0"), ustr("cpu"), glob("os", "system")) + b"."
    for index, members in enumerate((
        torch_tar_members(os_system_pickle()), torch_tar_members(storage_args=evil_args),
    )):  # fmt: skip
        result = scan_model(_file(tmp_path, f"m{index}.pt", tar(members)))
        assert result.verdict is Verdict.FAIL, result.findings


def test_tar_member_escaping_the_directory_is_a_finding(tmp_path: Path) -> None:
    """Path traversal in tar member names (zip-slip for tar) is reported."""
    result = scan_model(_file(tmp_path, "m.tar", ustar({"../../.bashrc": b"echo pwned\n"})))
    assert result.verdict is Verdict.FAIL


def test_gguf_with_a_standard_chat_template_passes(tmp_path: Path) -> None:
    """A ChatML template (loops, conditions, raise_exception, filters) is inside the sandbox."""
    result = scan_model(_file(tmp_path, "model.gguf", gguf_file(CHATML)))
    assert result.verdict is Verdict.PASS, result.findings
    assert result.metrics["formats"]["model.gguf"] == "gguf"


SSTI = {
    "llama_drama": LLAMA_DRAMA, "attr_filter": ATTR_FILTER,
    "attr_computed_name": "{{ ()|attr('_' * 2 + 'class' + '_' * 2) }}",
    "set_variable_name": "{% set a = '__cla' ~ 'ss__' %}{{ messages[a] }}",
    "map_attribute": "{{ messages|map(attribute='__class__')|list }}",
    "lipsum_globals": "{{ lipsum['__globals__']['os'].popen('id').read() }}",
    "cycler_init_globals": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
}  # fmt: skip


@pytest.mark.parametrize("template", list(SSTI.values()), ids=list(SSTI))
def test_gguf_chat_template_injection_is_found(template: str, tmp_path: Path) -> None:
    """Templates that reach dunder attributes, by name or through filters, fail."""
    result = scan_model(_file(tmp_path, "model.gguf", gguf_file(template)))
    assert result.verdict is Verdict.FAIL
    assert any("chat_template" in f["reason"] for f in result.findings)


def test_malformed_gguf_is_an_error(tmp_path: Path) -> None:
    """Truncated metadata fails closed."""
    data = gguf_file(CHATML)
    assert scan_model(_file(tmp_path, "t.gguf", data[:60])).verdict is Verdict.ERROR


def test_savedmodel_is_recognised_and_its_data_accepted(tmp_path: Path) -> None:
    """A SavedModel directory (not misread as ONNX) with checkpoint ops in its save and
    restore functions, variables and fingerprint passes."""
    folder = write_dir(saved_model_dir(["Placeholder", "MatMul", "Relu"], {}), tmp_path / "sm")
    result = scan_model(folder)
    assert result.verdict is Verdict.PASS, result.findings
    assert result.metrics["formats"]["saved_model.pb"] == "tf_savedmodel"


@pytest.mark.parametrize(
    ("graph", "functions"),
    [(["ReadFile"], {}), ([], {"__inference_serve_7": ["WriteFile"]}),
     ([], {"__inference_serve_7": ["EagerPyFunc"]}), (["DebugIdentityV2"], {}),
     ([], {"__inference_serve_7": ["SaveV2"]})],
)  # fmt: skip
def test_savedmodel_file_process_network_ops_are_found(graph, functions, tmp_path: Path) -> None:
    """File, Python and network ops fail, and checkpoint ops outside save/restore too."""
    folder = write_dir(saved_model_dir(graph, functions), tmp_path / "sm")
    assert scan_model(folder).verdict is Verdict.FAIL


def test_unknown_binary_still_fails_closed(tmp_path: Path) -> None:
    """Bytes no reader accepts are an error, never a pass."""
    assert scan_model(_file(tmp_path, "blob.bin", bytes(range(256)) * 4)).verdict is Verdict.ERROR
    assert saved_model(["Relu"], {})[:1] == b"\x08"  # the byte that used to mean "ONNX"
