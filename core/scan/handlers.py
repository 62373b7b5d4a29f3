"""Content-scanner handlers for tar archives (and torch's legacy tar checkpoints), GGUF and
TensorFlow SavedModel, mixed into :class:`content.ContentScanner`.

Files a SavedModel or an ONNX model keeps its data in (``variables/*``, ``fingerprint.pb``,
external tensor files) are raw data to the scanner's format detection; they are accepted as
such once the model that names them was validated (see ``accept_companions``).
"""

from __future__ import annotations

import tarfile
from pathlib import PurePosixPath
from typing import Any

from mlsecops_provider.core.scan.formats import ERROR, Blob, Finding

SAVEDMODEL_COMPANIONS = ("variables/", "fingerprint.pb", "assets/")
_TABLE_MAGIC = bytes.fromhex("57fb808b247547db")  # TF table (variables.index) footer


class ExtraFormats:
    """Handlers used by ContentScanner (``self`` provides ok/error/flag/scan_blob/...)."""

    out: Any
    allow: Any
    max_nesting: int
    companions: dict[str, str]

    def ok(self, source: str, fmt: str) -> None: ...  # provided by ContentScanner
    def error(self, source: str, fmt: str, reason: str) -> None: ...
    def flag(self, source: str, severity: str, reason: str, **extra: Any) -> None: ...
    def scan_blob(self, blob: Blob, source: str, depth: int = 0, tensor: bool = False) -> None: ...
    def scan_onnx(self, blob: Blob, source: str, depth: int) -> None: ...
    def check_json_config(
        self, blob: Blob, source: str, kind: str, strict: bool = True
    ) -> None: ...

    # --- tar ------------------------------------------------------------------------------
    def scan_tar(self, blob: Blob, source: str, depth: int) -> None:
        from mlsecops_provider.core.scan.torch_tar import (
            TORCH_MEMBERS,
            TorchTarReader,
            member_problem,
            tar_members,
        )  # fmt: skip

        if depth >= self.max_nesting:
            return self.error(source, "tar", f"tar nested deeper than {self.max_nesting}")
        try:
            members = tar_members(blob)
        except (tarfile.TarError, OSError, EOFError, ValueError) as err:
            return self.error(source, "tar", f"unreadable tar archive ({err})")
        names = {m.name for m in members if m.isfile()}
        torch = names >= TORCH_MEMBERS
        reader = TorchTarReader(self.allow, self.out.findings.extend)
        for info in members:
            member = f"{source}:{info.name}"
            problem = member_problem(info)
            if problem:
                self.flag(member, "high", problem)
            if not info.isfile():
                continue
            data = blob.sub(info.offset_data, info.offset_data + info.size)
            if data.size != info.size:
                self.error(member, "tar member", "member data runs past the end of the archive")
            elif torch and info.name in ("storages", "tensors"):
                try:
                    getattr(reader, info.name)(data, member)
                    self.ok(member, f"torch_tar_{info.name}")
                except ValueError as err:
                    self.error(member, "torch_tar", f"cannot read torch {info.name}: {err}")
            else:
                self.scan_blob(data, member, depth + 1)
        self.ok(source, "torch_tar" if torch else "tar")

    # --- GGUF -----------------------------------------------------------------------------
    def scan_gguf(self, blob: Blob, source: str, depth: int) -> None:
        from mlsecops_provider.core.scan.gguf import (
            GGUFError,
            chat_templates,
            read_gguf,
            template_problems,
        )  # fmt: skip

        try:
            info = read_gguf(blob)
        except GGUFError as err:
            return self.error(source, "gguf", f"invalid GGUF: {err}")
        for problem in info.problems:
            self.flag(source, "high", problem)
        for key, template in chat_templates(info):
            for problem in template_problems(template):
                self.flag(source, "high", f"{key}: {problem}", global_name=key)
        self.ok(source, "gguf")

    # --- protobuf: ONNX or TensorFlow SavedModel -------------------------------------------
    def scan_protobuf(self, blob: Blob, source: str, depth: int) -> None:
        from mlsecops_provider.core.scan.tf_savedmodel import (
            WireError,
            looks_like_savedmodel,
            op_findings,
        )  # fmt: skip

        data = blob.tobytes()
        if not looks_like_savedmodel(data):
            return self.scan_onnx(blob, source, depth)
        try:
            found = op_findings(data)
        except WireError as err:
            return self.error(source, "tf_savedmodel", f"invalid SavedModel: {err}")
        for severity, op, reason in found:
            self.flag(source, severity, f"TensorFlow {reason}", global_name=op)
        folder = PurePosixPath(source).parent
        prefix = "" if str(folder) == "." else f"{folder}/"
        for companion in SAVEDMODEL_COMPANIONS:
            self.companions[prefix + companion] = "tf_savedmodel_data"
        self.companions[prefix + "keras_metadata.pb"] = "keras_metadata"
        self.ok(source, "tf_savedmodel")

    def accept_companions(self, read: Any) -> None:
        """Data files named by a validated model: accepted instead of 'unrecognised'."""
        for source in list(self.out.formats):
            kind = next((k for p, k in self.companions.items() if _matches(source, p)), None)
            if kind is None:
                continue
            errors = [f for f in self.out.findings if f.file == source and f.severity == ERROR]
            if kind == "keras_metadata":
                self.out.findings = [f for f in self.out.findings if f not in errors]
                self._keras_metadata(read(source), source)
            elif errors and all(
                e.reason.startswith(("unrecognised", "invalid ONNX")) for e in errors
            ):
                if source.endswith("variables.index") and not read(source).endswith(_TABLE_MAGIC):
                    continue
                self.out.findings = [f for f in self.out.findings if f not in errors]
            else:
                continue
            self.out.formats[source] = kind
            self.out.validated.add(source)

    def _keras_metadata(self, data: bytes, source: str) -> None:
        from mlsecops_provider.core.scan.keras import keras_findings, looks_like_config
        from mlsecops_provider.core.scan.tf_savedmodel import json_strings

        for config in json_strings(data):
            if looks_like_config(config):
                self.out.findings.extend(keras_findings(config, source))


def _matches(source: str, pattern: str) -> bool:
    return source.startswith(pattern) if pattern.endswith("/") else source == pattern


__all__ = ["ExtraFormats", "Finding"]
