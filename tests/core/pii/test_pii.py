"""PII de-identification with the real Presidio + spaCy engine (loaded once per module)."""

from __future__ import annotations

import importlib
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.errors import ConfigError, PolicyError
from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig, resolve_key
from mlsecops_provider.core.pii.transform import Transformer, mask, measure_recall, pseudonym
from mlsecops_provider.core.policy import parse_policy
from mlsecops_provider.include.generator import LABEL, PII_COLUMNS, generate, pii_truth

KEY = b"test-key-0123456789abcdef"
OTHER_KEY = b"other-key-0123456789abcdef"
CLEAN_COLUMNS = ("customer_id", "age", "annual_income", "employment_type", "region", LABEL)
DEIDENTIFY_CMD = "mlsecops_provider.core.cli.deidentify_cmd"


@pytest.fixture(scope="module")
def frame() -> Any:
    return generate(300, seed=5)


@pytest.fixture(scope="module")
def default_run(frame: Any) -> Any:
    deidentifier = Deidentifier.prepare(PIIConfig(exclude_columns=(LABEL,)))
    return deidentifier.run(frame)


def _truth_values(frame: Any) -> list[str]:
    return [v for _, values in pii_truth(frame).values() for v in values]


def test_planted_values_of_every_type_are_gone(frame: Any, default_run: Any) -> None:
    out = default_run.frame
    for column, (_entity, values) in pii_truth(frame).items():
        assert not set(values) & set(out[column].astype(str)), column
    recall = measure_recall(frame, out, pii_truth(frame), ["notes"])
    assert all(r["recall"] == 1.0 for r in recall["columns"].values())
    assert set(recall["columns"]) == set(PII_COLUMNS.values())
    free = recall["free_text"]
    assert free["PERSON"]["recall"] >= 0.95
    for entity in ("EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN"):
        assert free[entity]["recall"] >= 0.99, (entity, free[entity])
    assert default_run.result.verdict.value == "pass"


def test_column_decisions(default_run: Any) -> None:
    plans = {c["column"]: c for c in default_run.details["columns"]}
    for column, entity in PII_COLUMNS.items():
        assert (plans[column]["kind"], plans[column]["entity"]) == ("pii", entity)
    assert plans["notes"]["kind"] == "free_text"
    assert plans["annual_income"]["kind"] == "clean" and plans["annual_income"]["numeric"]
    assert plans[LABEL]["kind"] == "excluded"
    assert plans["customer_id"]["kind"] == "clean"
    assert default_run.details["strategies"]["email"] == "replace"


def test_clean_columns_and_label_are_byte_identical(frame: Any, default_run: Any) -> None:
    import pandas as pd

    out = default_run.frame
    assert list(out.columns) == list(frame.columns)
    for column in CLEAN_COLUMNS:
        assert out[column].dtype == frame[column].dtype, column
        pd.testing.assert_series_equal(out[column], frame[column], check_exact=True)
    for column in ("age", "annual_income", LABEL):
        assert out[column].to_numpy().tobytes() == frame[column].to_numpy().tobytes()


def test_report_and_summary_carry_no_values(frame: Any, default_run: Any) -> None:
    text = json.dumps([default_run.details, default_run.result.to_dict()], default=str)
    assert not [v for v in _truth_values(frame) if v in text]
    metrics = default_run.result.metrics
    assert metrics["pii_columns"] == len(PII_COLUMNS) and metrics["free_text_columns"] == 1
    assert metrics["residual_rate_max"] == 0.0


def test_operators_per_entity_type(frame: Any) -> None:
    config = PIIConfig(
        exclude_columns=(LABEL,),
        operators={
            "PERSON": "pseudonymize",
            "EMAIL_ADDRESS": "mask",
            "PHONE_NUMBER": "redact",
            "US_SSN": "drop",
            "IP_ADDRESS": "drop",
        },
        mask_keep_last=4,
    )
    outcome = Deidentifier.prepare(config, KEY).run(frame)
    out = outcome.frame
    assert "ssn" not in out.columns and "ip_address" not in out.columns
    assert (out["phone"] == "").all()
    assert out["card_number"].eq("<CREDIT_CARD>").all()
    assert all(re.fullmatch(r"[*.@]+.{4}", v) for v in out["email"])
    assert out["email"].str[-4:].tolist() == frame["email"].str[-4:].tolist()
    assert out["full_name"].str.fullmatch(r"<PERSON_[0-9a-f]{16}>").all()
    # the same name gets the same pseudonym in its column and inside the notes (joins work)
    linked = [i for i in range(len(frame)) if frame["full_name"][i] in frame["notes"][i]]
    assert linked
    joined = sum(out["full_name"][i] in out["notes"][i] for i in linked)
    assert joined / len(linked) >= 0.95
    assert not any(frame["ssn"][i] in out["notes"][i] for i in range(len(frame)))
    assert outcome.details["strategies"]["ssn"] == "drop"
    assert outcome.result.verdict.value == "pass"


def test_pseudonyms_are_stable_per_key(frame: Any) -> None:
    config = PIIConfig(exclude_columns=(LABEL,), default_operator="pseudonymize")
    small = frame.head(40)
    first = Deidentifier.prepare(config, KEY).run(small).frame
    again = Deidentifier.prepare(config, KEY).run(small).frame
    other = Deidentifier.prepare(config, OTHER_KEY).run(small).frame
    assert first["email"].tolist() == again["email"].tolist()
    assert first["notes"].tolist() == again["notes"].tolist()
    assert not set(first["email"]) & set(other["email"])
    assert pseudonym(KEY, "EMAIL_ADDRESS", small["email"][0]) == first["email"][0]
    assert first["full_name"].nunique() == small["full_name"].nunique()


def test_nulls_stay_null(frame: Any) -> None:
    small = frame.head(60).copy()
    small.loc[3, "email"] = None
    small.loc[4, "notes"] = None
    out = Deidentifier.prepare(PIIConfig()).run(small).frame
    assert out["email"].isna().tolist() == small["email"].isna().tolist()
    assert out["notes"].isna().tolist() == small["notes"].isna().tolist()


CARDS = (4111111111111111, 5500005555555559, 4012888888881881)


def _planted_frame() -> Any:
    """A clean table with three card numbers in an integer column: too few for the plan."""
    import pandas as pd

    score = list(range(200))
    for row, card in zip((17, 99, 188), CARDS, strict=True):
        score[row] = card
    return pd.DataFrame({"code": [f"n/a-{i % 7}" for i in range(200)], "score": score})


def test_residual_check_fails_pii_the_plan_left_untouched() -> None:
    frame = _planted_frame()
    outcome = Deidentifier.prepare(PIIConfig()).run(frame)
    assert outcome.result.verdict.value == "fail"
    assert outcome.frame["score"].equals(frame["score"])
    finding = outcome.result.findings[0]
    assert finding["column"] == "score" and finding["entity_types"] == {"CREDIT_CARD": 3}
    assert finding["example_rows"] == [17, 99, 188]
    assert finding["rate"] == pytest.approx(3 / 200)
    assert not [c for c in CARDS if str(c) in json.dumps(outcome.details)]


def test_unknown_entity_type_or_operator_is_a_clear_error() -> None:
    with pytest.raises(PolicyError, match=r"operators: unknown entity type\(s\) \['NO_SUCH'\]"):
        Deidentifier.prepare(PIIConfig(operators={"NO_SUCH": "mask"}))
    with pytest.raises(PolicyError, match=r"entities: unknown entity type\(s\) \['FOO'\]"):
        Deidentifier.prepare(PIIConfig(entities=("PERSON", "FOO")))
    policy = parse_policy({"gates": {"pii_deidentification": {"operators": {"PERSON": "shred"}}}})
    with pytest.raises(PolicyError, match="operators.PERSON: unknown operator 'shred'"):
        PIIConfig.from_policy(policy)
    with pytest.raises(ConfigError, match="spaCy model 'no_such_model' is not installed"):
        Deidentifier.prepare(PIIConfig(nlp_model="no_such_model"))


def test_missing_or_short_key_is_a_clear_error() -> None:
    config = PIIConfig(operators={"PERSON": "pseudonymize"}, key_env="PII_TEST_KEY")
    with pytest.raises(ConfigError, match="PII_TEST_KEY .* is not set"):
        resolve_key(config, env={})
    assert resolve_key(config, env={"PII_TEST_KEY": "k" * 20}) == b"k" * 20
    with pytest.raises(ConfigError, match="key_env or key_conn_id"):
        resolve_key(replace(config, key_env=None), env={})
    assert resolve_key(PIIConfig(), env={}) is None
    with pytest.raises(ConfigError, match="pseudonymize needs a key"):
        Deidentifier.prepare(config, None)
    with pytest.raises(ConfigError, match=">= 16 bytes"):
        Transformer(default_operator="pseudonymize", key=b"short")


def test_mask_keeps_separators_and_last_characters() -> None:
    assert mask("(212) 555-1234", keep_last=4) == "(***) ***-1234"
    assert mask("José Núñez") == "**** *****"
    assert mask("abc", keep_last=4) == "***"


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse (and record) every connection or name lookup beyond 127.0.0.1."""
    attempts: list[str] = []
    local = ("127.0.0.1", "localhost", "::1")
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in local:
            attempts.append(f"connect {address[0]}")
            raise OSError("network blocked by the test")
        return real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in local and host is not None:
            attempts.append(f"resolve {host}")
            raise socket.gaierror("network blocked by the test")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts


def test_engine_runs_with_the_network_blocked(no_network: list[str], frame: Any) -> None:
    import tldextract

    from mlsecops_provider.core.pii.engine import load_engine, offline_tld_extractor

    load_engine.cache_clear()
    offline_tld_extractor.cache_clear()
    outcome = Deidentifier.prepare(PIIConfig()).run(frame.head(30))
    assert outcome.result.verdict.value == "pass"
    assert no_network == []
    # the guard works: tldextract's default extractor reaches for the suffix list
    tldextract.TLDExtract(cache_dir=None)("someone@example.co.uk")
    assert no_network


def _cli(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    cli = importlib.import_module("mlsecops_provider.core.cli.main")
    commands = importlib.import_module("mlsecops_provider.core.cli.commands")
    if DEIDENTIFY_CMD not in commands.COMMAND_MODULES:
        monkeypatch.setattr(
            commands, "COMMAND_MODULES", (*commands.COMMAND_MODULES, DEIDENTIFY_CMD)
        )
    return int(cli.main(list(argv)))


def test_cli_exit_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlsecops_provider.core.data.datasets import read_table, write_table

    source = tmp_path / "in.parquet"
    ref = write_table(generate(80, seed=9), source.as_uri())
    out, report = tmp_path / "out.parquet", tmp_path / "report.json"
    assert _cli(monkeypatch, "deidentify", str(source), str(out), "--report", str(report)) == 0
    written, _ = read_table(out.as_uri())
    assert "<PERSON>" in set(written["full_name"])
    assert json.loads(report.read_text())["output"]["written"] is True
    assert read_table(source.as_uri(), ref.sha256)[1].sha256 == ref.sha256  # input unchanged

    planted = tmp_path / "planted.parquet"
    write_table(_planted_frame(), planted.as_uri())
    failed = tmp_path / "failed.parquet"
    assert _cli(monkeypatch, "deidentify", str(planted), str(failed)) == 1
    assert not failed.exists()

    bad = tmp_path / "bad.yaml"
    bad.write_text("gates:\n  pii_deidentification:\n    default_operator: shred\n")
    pseudo = tmp_path / "pseudo.yaml"
    pseudo.write_text("gates:\n  pii_deidentification:\n    default_operator: pseudonymize\n")
    capsys.readouterr()
    for args in (
        ("--policy", str(bad)),
        ("--policy", str(pseudo), "--key-env", "PII_NO_SUCH_VAR"),
    ):
        assert _cli(monkeypatch, "deidentify", str(source), str(failed), *args) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert _cli(monkeypatch, "deidentify", str(tmp_path / "missing.parquet"), str(failed)) == 2
    assert _cli(monkeypatch, "deidentify", str(source), str(source)) == 2
    assert not failed.exists()

    monkeypatch.setenv("PII_TEST_KEY", "0123456789abcdef0123")
    args = ("--policy", str(pseudo), "--key-env", "PII_TEST_KEY")
    assert _cli(monkeypatch, "deidentify", str(source), str(failed), *args) == 0
    assert read_table(failed.as_uri())[0]["email"].str.startswith("<EMAIL_ADDRESS_").all()
