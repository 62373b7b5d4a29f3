"""The data validation gate with real Great Expectations: suite, severities, screens, CLI."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from mlsecops_provider.core.data.datasets import write_table
from mlsecops_provider.core.errors import ConfigError, MLSecOpsError, PolicyError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.policy import parse_policy
from mlsecops_provider.core.settings import packaged_file
from mlsecops_provider.core.validation.gate import ValidationConfig, validate_dataset
from mlsecops_provider.core.validation.poisoning import PoisoningConfig
from mlsecops_provider.core.validation.suite import Suite, load_suite, parse_suite
from mlsecops_provider.include.generator import LABEL, PII_COLUMNS, TEXT_COLUMN, generate

if TYPE_CHECKING:
    from tests.conftest import CliResult

SUITE_PATH = packaged_file("suites", "credit_risk.json")
EXCLUDED = ["customer_id", TEXT_COLUMN, *PII_COLUMNS]
CONFIG = ValidationConfig(
    screens=PoisoningConfig(label_column=LABEL, exclude_columns=tuple(EXCLUDED))
)
NO_SCREENS = ValidationConfig(screens=PoisoningConfig(enabled=False))


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite(str(SUITE_PATH))


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate(2000, seed=7)


def small_suite(*expectations: dict[str, Any], name: str = "small") -> dict[str, Any]:
    return {"name": name, "expectations": list(expectations)}


def expect(etype: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": etype, "kwargs": kwargs}


@pytest.mark.parametrize("seed", [7, 11])
def test_shipped_suite_passes_on_clean_generator_batches(suite: Suite, seed: int) -> None:
    result, details = validate_dataset(generate(2000, seed=seed), suite, config=NO_SCREENS)
    assert result.verdict is Verdict.PASS, result.findings
    assert details["summary"]["statistics"] == {
        "evaluated": 25,
        "successful": 25,
        "unsuccessful": 0,
        "success_percent": 100.0,
    }
    severities = {row["severity"] for row in details["expectations"]}
    assert {"critical", "warning"} <= severities
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"


def test_shipped_suite_warns_on_drift_and_label_flips_alone(suite: Suite) -> None:
    drifted, _ = validate_dataset(generate(2000, seed=13, drift=True), suite, config=NO_SCREENS)
    assert drifted.verdict is Verdict.WARN
    assert {f["column"] for f in drifted.findings} == {"annual_income", "debt_to_income"}
    flipped, _ = validate_dataset(
        generate(2000, seed=13, label_flip_rate=0.3), suite, config=NO_SCREENS
    )
    assert flipped.verdict is Verdict.WARN
    assert [(f["column"], f["severity"]) for f in flipped.findings] == [(LABEL, "warning")]


def test_clean_batch_with_reference_passes(suite: Suite, reference: pd.DataFrame) -> None:
    result, details = validate_dataset(
        generate(2000, seed=11), suite, reference, CONFIG, {"data": "sha256:abc"}
    )
    assert result.verdict is Verdict.PASS
    assert result.findings == []
    assert result.subjects["data"] == "sha256:abc"
    assert result.subjects["suite"] == f"sha256:{suite.sha256}"
    assert result.metrics["screen_drift"] == "pass"
    assert result.tool_versions["great_expectations"].startswith("1.")
    assert result.ended_at is not None
    json.dumps(details)  # the details are JSON as they are


def test_bad_batch_fails_naming_columns(suite: Suite) -> None:
    batch = generate(2000, seed=11)
    batch.loc[:9, "age"] = 150
    batch.loc[:4, "annual_income"] = None
    batch = batch.drop(columns=["region"])
    result, details = validate_dataset(batch, suite, config=NO_SCREENS)
    assert result.verdict is Verdict.FAIL
    failed = {(f["type"], f["column"]): f for f in result.findings}
    age = failed[("expect_column_values_to_be_between", "age")]
    assert age["observed"] == "10 of 2000 unexpected (0.5%)"
    nulls = failed[("expect_column_values_to_not_be_null", "annual_income")]
    assert nulls["observed"].startswith("5 of 2000 unexpected")
    region = failed[("expect_column_values_to_be_in_set", "region")]
    assert region["status"] == "error" and "region" in region["observed"]
    columns = failed[("expect_table_columns_to_match_set", None)]
    assert columns["observed"] == "missing: region"
    assert details["summary"]["failed_total"] == 4
    assert all(f["severity"] == "critical" for f in details["summary"]["failed_expectations"])


def test_row_values_never_reach_summary_findings_or_html(reference: pd.DataFrame) -> None:
    batch = generate(600, seed=11)
    secret = "leaked.person@secret.invalid"
    batch.loc[3, "email"] = secret
    spec = small_suite(
        expect("expect_column_values_to_match_regex", column="email", regex="example")
    )
    result, details = validate_dataset(batch, spec, reference, CONFIG)
    assert result.verdict is Verdict.FAIL
    assert secret not in json.dumps(result.to_dict()) + json.dumps(details)
    assert "partial_unexpected_list" not in json.dumps(details["validation_result"])
    kept = ValidationConfig(keep_unexpected_values=True, screens=CONFIG.screens)
    _, raw = validate_dataset(batch, spec, reference, kept)
    assert secret not in json.dumps(raw)  # a text column never keeps its values


def test_warning_only_failures_warn(reference: pd.DataFrame) -> None:
    batch = generate(2000, seed=11)
    spec = small_suite(
        expect("expect_column_values_to_not_be_null", column="age"),
        {
            **expect("expect_column_mean_to_be_between", column="age", max_value=10),
            "severity": "warning",
        },
        {
            **expect("expect_column_max_to_be_between", column="age", max_value=5),
            "meta": {"severity": "warning"},
        },
        {
            **expect("expect_column_min_to_be_between", column="age", min_value=99),
            "severity": "info",
        },
    )
    result, details = validate_dataset(batch, spec, reference, CONFIG)
    assert result.verdict is Verdict.WARN
    assert result.message == "2 warning expectation(s) failed; 1 info expectation(s) failed"
    assert [f["severity"] for f in result.findings] == ["warning", "warning", "info"]
    assert details["summary"]["statistics"]["unsuccessful"] == 3
    info_only = small_suite(spec["expectations"][0], spec["expectations"][3])
    result, _ = validate_dataset(batch, info_only, reference, CONFIG)
    assert result.verdict is Verdict.PASS and len(result.findings) == 1


def test_poisoned_batch_fails_on_screens(suite: Suite, reference: pd.DataFrame) -> None:
    poisoned = generate(2000, seed=13, label_flip_rate=0.3, outlier_rate=0.05, drift=True)
    result, details = validate_dataset(poisoned, suite, reference, CONFIG)
    assert result.verdict is Verdict.FAIL
    screens = {f["screen"] for f in result.findings if f["kind"] == "screen"}
    assert screens == {"drift", "label_shift", "outliers"}
    assert result.metrics["label_shift_tvd"] > 0.1
    assert details["screens"]["duplicates"]["status"] == "pass"
    assert "screens failed: drift, label_shift, outliers" in result.message
    summary = result.summary()
    assert summary["metrics"]["outliers_rate"] > 0.04 and len(summary["findings"]) <= 10


def test_warn_only_screen_gives_warn(reference: pd.DataFrame) -> None:
    drifted = generate(2000, seed=13, drift=True)
    spec = small_suite(expect("expect_column_to_exist", column="age"))
    screens = PoisoningConfig(
        label_column=LABEL,
        exclude_columns=tuple(EXCLUDED),
        warn_only=("drift", "label_shift", "outliers"),
    )
    result, _ = validate_dataset(drifted, spec, reference, ValidationConfig(screens=screens))
    assert result.verdict is Verdict.WARN
    assert {f["severity"] for f in result.findings} == {"warning"}


def test_empty_dataset_fails(suite: Suite) -> None:
    result, _ = validate_dataset(generate(10).iloc[:0], suite, config=CONFIG)
    assert result.verdict is Verdict.FAIL
    assert result.message == "dataset is empty (0 rows)"


def test_data_docs_html_is_self_contained_and_escaped(reference: pd.DataFrame) -> None:
    spec = small_suite(expect("expect_column_to_exist", column="age"), name="<script>x</script>")
    _, details = validate_dataset(generate(600, seed=11), spec, reference, CONFIG)
    page = details["data_docs_html"]
    assert page.startswith("<!DOCTYPE html>") and "expect_column_to_exist" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http" not in page


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            expect("expect_no_such_thing", column="a"),
            r"expectations\[1\] \(expect_no_such_thing\): unknown expectation type",
        ),
        (expect("expect_column_values_to_be_in_set", column="a"), r"expectations\[1\] .*value_set"),
        (expect("expect_column_values_to_be_between", column="a", min_value="x"), "min_value"),
        (
            {**expect("expect_column_to_exist", column="a"), "severity": "fatal"},
            "'fatal' is not one",
        ),
        (
            {
                **expect("expect_column_to_exist", column="a"),
                "severity": "critical",
                "meta": {"severity": "warning"},
            },
            "conflicts with meta.severity",
        ),
        (
            {**expect("expect_column_to_exist", column="a"), "extra": 1},
            r"unknown field\(s\) \['extra'\]",
        ),
        ({"kwargs": {}}, r"expectations\[1\] \(<no type>\)"),
        ("not an object", r"expectations\[1\]: must be a JSON object"),
    ],
)
def test_malformed_suite_names_the_expectation(bad: Any, message: str) -> None:
    spec = small_suite(expect("expect_column_to_exist", column="a"), bad)
    with pytest.raises(ConfigError, match=message) as caught:
        parse_suite(spec, "s.json")
    assert "\n" not in str(caught.value) and str(caught.value).startswith("s.json: ")


def test_malformed_suite_files(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json: suite is not valid JSON"):
        load_suite(str(tmp_path / "bad.json"))
    with pytest.raises(ConfigError, match="'expectations' must be a non-empty list"):
        parse_suite({"name": "x", "expectations": []})
    with pytest.raises(MLSecOpsError, match="no such file"):
        load_suite(str(tmp_path / "missing.json"))


def test_exported_gx_suite_round_trips() -> None:
    import great_expectations as gx

    exported = gx.ExpectationSuite(
        name="exported",
        expectations=[
            gx.expectations.ExpectColumnValuesToNotBeNull(column="age", severity="warning")
        ],
    ).to_json_dict()
    checked = parse_suite(json.loads(json.dumps(exported)))
    assert checked.name == "exported"
    result, _ = validate_dataset(pd.DataFrame({"age": [1, None]}), checked, config=NO_SCREENS)
    assert result.verdict is Verdict.WARN


def test_config_from_policy() -> None:
    policy = parse_policy(
        {
            "gates": {
                "data_validation": {
                    "keep_unexpected_values": False,
                    "screens": {
                        "label_column": "default",
                        "exclude_columns": ["ssn"],
                        "outlier_z": 5,
                    },
                }
            }
        },
        "p.yaml",
    )
    config = ValidationConfig.from_policy(policy)
    assert config.screens.exclude_columns == ("ssn",) and config.screens.outlier_z == 5.0
    assert ValidationConfig.from_policy(parse_policy({})) == ValidationConfig()
    bad = parse_policy({"gates": {"data_validation": {"screens": {"psi": 1}}}}, "p.yaml")
    with pytest.raises(PolicyError, match=r"p.yaml: gates.data_validation.screens: unknown field"):
        ValidationConfig.from_policy(bad)


# --- CLI (as a user runs it: the shared ``cli`` fixture) ------------------------------------


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory: pytest.TempPathFactory, reference: pd.DataFrame) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli")
    files = {
        "ref": reference,
        "clean": generate(2000, seed=11),
        "poisoned": generate(2000, seed=13, label_flip_rate=0.3, outlier_rate=0.05, drift=True),
    }
    paths = {name: str(root / f"{name}.parquet") for name in files}
    for name, frame in files.items():
        write_table(frame, Path(paths[name]).as_uri())
    policy = {
        "gates": {
            "data_validation": {"screens": {"label_column": LABEL, "exclude_columns": EXCLUDED}}
        }
    }
    paths["policy"] = str(root / "policy.yaml")
    Path(paths["policy"]).write_text(json.dumps(policy))  # JSON is valid YAML
    return paths


def test_cli_pass_writes_report_and_html(
    cli_files: dict[str, str], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    report, page = tmp_path / "report.json", tmp_path / "docs.html"
    argv = [
        "validate",
        cli_files["clean"],
        "--suite",
        str(SUITE_PATH),
        "--reference",
        cli_files["ref"],
    ]
    argv += ["--policy", cli_files["policy"], "--report", str(report), "--html", str(page)]
    done = cli(argv)
    assert done.code == 0
    assert done.out.startswith("data_validation: PASS")
    stored = json.loads(report.read_text())
    assert stored["result"]["subjects"]["data"].startswith("sha256:")
    assert "reference" in stored["result"]["subjects"]
    assert stored["details"]["summary"]["failed_total"] == 0
    assert "<table>" in page.read_text()


def test_cli_fail_exit_1(cli_files: dict[str, str], cli: Callable[..., CliResult]) -> None:
    argv = ["validate", cli_files["poisoned"], "--suite", str(SUITE_PATH), "--json"]
    argv += ["--reference", cli_files["ref"], "--policy", cli_files["policy"]]
    done = cli(argv)
    assert done.code == 1
    summary = json.loads(done.out)
    assert summary["verdict"] == "fail" and summary["findings_total"] > 3


def test_cli_errors_exit_2(
    cli_files: dict[str, str], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    bad_suite = tmp_path / "bad.json"
    bad_suite.write_text(json.dumps(small_suite(expect("expect_nothing_real"))))
    assert cli(["validate", cli_files["clean"], "--suite", str(bad_suite)]).code == 2
    missing = str(tmp_path / "missing.parquet")
    assert cli(["validate", missing, "--suite", str(SUITE_PATH)]).code == 2
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 not really PAR1")
    assert cli(["validate", str(garbage), "--suite", str(SUITE_PATH)]).code == 2


def test_light_import_and_analytics_off_before_gx_loads() -> None:
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "os.environ.pop('GX_ANALYTICS_ENABLED', None)\n"
        "from mlsecops_provider.core.validation import gate, poisoning\n"
        "from mlsecops_provider.core.validation.suite import gx_context, parse_suite\n"
        "from mlsecops_provider.core.cli import validate_cmd\n"
        "heavy = {'great_expectations', 'pandas', 'numpy', 'scipy', 'sklearn'}\n"
        "assert not heavy & set(sys.modules), heavy & set(sys.modules)\n"
        "parse_suite({'name': 'x', 'expectations': [\n"
        "    {'type': 'expect_column_to_exist', 'kwargs': {'column': 'a'}}]})\n"
        "assert os.environ['GX_ANALYTICS_ENABLED'] == 'false'\n"
        "assert gx_context().config.analytics_enabled is False\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
