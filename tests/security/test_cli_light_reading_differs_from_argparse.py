"""Attack: make ``mlsecops verify`` compare a folder with a manifest other than the one
argparse would take, or check another folder, through the light reader (argv read without
argparse): hostile paths that look like options, options given twice, abbreviations, ``--``,
``=`` inside values, values that look like options.

Proves: for every such argv the light reader either declines (argparse then decides, with
its own errors) or reads exactly what argparse reads; and end to end, ``verify`` with a
tampered folder exits 1 or 2 whichever way it was spelt, never 0.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from mlsecops_provider.core.cli.light import read_argv
from mlsecops_provider.core.cli.main import main
from tests.core.cli.light_reading import LIGHT, argparse_reading

HOSTILE = [
    ["verify", "--manifest=evil.json", "--manifest", "good.json", "model"],
    ["verify", "model", "--manifest", "good.json", "--manifest=evil.json"],
    ["verify", "--manifest", "--manifest=evil.json", "model"],
    ["verify", "--man", "evil.json", "model"],
    ["verify", "--manifest=good.json", "--", "--manifest=evil.json"],
    ["verify", "--manifest=good.json=evil.json", "model"],
    ["verify", "-", "--manifest", "good.json"],
    ["verify", "--manifest", "good.json", "--workers", "-1", "model"],
    ["verify", "--manifest", "good.json", "model", "other-model"],
    ["verify", "--manifest", "good.json", "-model"],
    ["--debug", "verify", "--manifest", "good.json", "model", "--debug"],
    ["hash", "--out=--manifest=evil.json", "model"],
    ["hash", "model", "--out", "-"],
]


@pytest.mark.parametrize("argv", HOSTILE, ids=" ".join)
def test_hostile_argv_is_declined_or_read_as_argparse_reads_it(argv: list[str]) -> None:
    light = read_argv(argv, LIGHT)
    assert light is None or vars(light) == argparse_reading(argv)


def test_a_tampered_folder_never_verifies_whichever_way_the_manifest_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    monkeypatch.chdir(tmp_path)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["hash", "model", "--out", "good.json"]) == 0
    (model / "w.bin").write_bytes(b"poisoned")
    spellings = [
        ["verify", "model", "--manifest", "good.json"],
        ["verify", "--manifest=good.json", "model"],
        ["verify", "--workers=1", "model", "--manifest", "good.json"],
        ["-v", "verify", "model", "--manifest=good.json", "--workers", "2"],
        ["verify", "--manifest", "good.json", "--", "model"],  # argparse reads this one
        ["verify", "--man", "good.json", "model"],
    ]
    for argv in spellings:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                code = main(argv)
            except SystemExit as stop:  # argparse's usage error
                code = int(stop.code or 0)
        assert code in (1, 2), argv
