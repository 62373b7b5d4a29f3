"""Light commands read their arguments without argparse, exactly as argparse would read them."""

from __future__ import annotations

import random

import pytest

from mlsecops_provider.core.cli.light import read_argv
from mlsecops_provider.core.cli.parser import build_parser
from tests.core.cli.light_reading import LIGHT, argparse_reading

TOKENS = (
    *("m.bin", "dir/", "a=b", "2", "-1", "", "-", "--", "-x", "-h", "--help"),
    *("--out", "--out=", "--out=m.json", "--out=-m", "--ou", "--ou=m", "--output"),
    *("--manifest", "--manifest=m.json", "--workers", "--workers=2", "--workers=0"),
    *("--workers=two", "--workers=-2", "-v", "--verbose", "--debug", "hash", "verify"),
)


@pytest.mark.parametrize(
    "argv",
    [
        ["hash", "m.bin"],
        ["-v", "--debug", "hash", "m.bin"],
        ["hash", "--out", "m.json", "dir/"],
        ["hash", "dir/", "--out=m.json", "--workers", "3"],
        ["verify", "dir/", "--manifest", "m.json"],
        ["--verbose", "verify", "--workers=1", "--manifest=s3://b/m.json", "dir/"],
    ],
)
def test_plain_forms_are_read_as_argparse_reads_them(argv: list[str]) -> None:
    light = read_argv(argv, LIGHT)
    assert light is not None, argv
    assert vars(light) == argparse_reading(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["hash"],  # no PATH: argparse's usage error
        ["hash", "a", "b"],  # one PATH too many
        ["hash", "--ou", "m", "x"],  # an abbreviation: argparse resolves or refuses it
        ["hash", "x", "--out", "a", "--out", "b"],  # given twice
        ["hash", "x", "--out"],  # no value
        ["hash", "x", "--out="],  # empty value
        ["hash", "-x"],  # looks like an option
        ["hash", "--", "-x"],
        ["hash", "x", "--workers", "0"],  # the type refuses it: argparse's message
        ["hash", "x", "-v"],  # a global flag after the command: argparse refuses it
        ["hash", "--help"],
        ["verify", "x"],  # --manifest is required
        ["--verb", "hash", "x"],
        ["validate", "x"],  # not a light command
        [],
    ],
)
def test_anything_else_is_left_to_argparse(argv: list[str]) -> None:
    assert read_argv(argv, LIGHT) is None


def test_random_argv_is_read_as_argparse_reads_it_or_left_to_it() -> None:
    """Over 20,000 random token sequences: the light reader either declines, or agrees with
    argparse attribute for attribute (never a reading of its own)."""
    rng = random.Random(20261202)
    read = 0
    for _ in range(20_000):
        head = rng.sample(["-v", "--debug"], rng.randint(0, 1))
        tail = [rng.choice(TOKENS) for _ in range(rng.randint(0, 5))]
        argv = [*head, rng.choice(["hash", "verify"]), *tail]
        light = read_argv(argv, LIGHT)
        if light is not None:
            read += 1
            assert vars(light) == argparse_reading(argv), argv
    assert read > 300  # the plain forms are common among them: the comparison is not vacuous


def test_register_builds_the_parser_that_prints_help_and_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser(("mlsecops_provider.core.cli.hash_cmd",)).parse_args(["verify", "--help"])
    out = capsys.readouterr().out
    assert "--manifest MANIFEST" in out and "--workers WORKERS" in out and "PATH" in out
