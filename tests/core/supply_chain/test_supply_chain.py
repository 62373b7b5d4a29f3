"""Dependency audit: real OSV records (tests/fixtures/advisories), real pip-audit code paths.

No network: the offline advisory database, or hand-written OSV servers on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from mlsecops_provider.core.errors import AdvisorySourceError, DependencyAuditError, PolicyError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.policy import parse_policy
from mlsecops_provider.core.supply_chain.gate import (
    DependencyAuditConfig,
    audit_dependencies,
    sbom_bytes,
)
from mlsecops_provider.core.supply_chain.source import AdvisorySource

ADVISORIES = Path(__file__).resolve().parents[2] / "fixtures" / "advisories"
OFFLINE = AdvisorySource(advisory_db=str(ADVISORIES))
TODAY = date(2026, 6, 1)
VULNERABLE_PINS = """\
# known-vulnerable releases
Werkzeug==2.0.0
Jinja2==2.10
requests==2.30.0 --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000
py==1.11.0
gratient==0.5
six==1.16.0
"""
CLEAN_PINS = """\
werkzeug==3.0.1
jinja2==2.11.3
requests==2.2.0
py==1.11.1
gratient==0.4
loguru==0.5.0
"""


def _write(tmp_path: Path, text: str, name: str = "requirements.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _ids(findings: list[dict[str, Any]], status: str = "vulnerable") -> set[str]:
    return {f["id"] for f in findings if f["status"] == status}


# --- the offline advisory database ----------------------------------------------------


def test_vulnerable_pins_are_found_with_ids_aliases_and_fixes(tmp_path: Path) -> None:
    result, details = audit_dependencies(
        requirements=_write(tmp_path, VULNERABLE_PINS), source=OFFLINE, today=TODAY
    )
    assert result.gate == "dependency_audit" and result.verdict is Verdict.FAIL
    assert _ids(result.findings) == {
        "PYSEC-2022-203",  # werkzeug < 2.1.1
        "PYSEC-2023-221",  # werkzeug < 2.3.8
        "PYSEC-2021-66",  # Jinja2 (canonical name jinja2) < 2.11.3
        "PYSEC-2023-74",  # requests 2.3.0 .. 2.31.0 (a JSON record)
        "PYSEC-2022-42969",  # py, last_affected 1.11.0
        "PYSEC-2024-1",  # gratient, explicit versions only
    }
    werkzeug = {f["id"]: f for f in result.findings if f["package"] == "Werkzeug"}
    assert "CVE-2022-29361" in werkzeug["PYSEC-2022-203"]["aliases"]
    assert werkzeug["PYSEC-2022-203"]["fix_versions"] == ["2.1.1"]
    assert werkzeug["PYSEC-2023-221"]["fix_versions"] == ["2.3.8", "3.0.1"]
    assert werkzeug["PYSEC-2023-221"]["severity"].startswith("CVSS:3.1/")
    assert result.metrics == {
        "packages_audited": 6,
        "packages_skipped": 0,
        "vulnerable_packages": 5,
        "vulnerabilities": 6,
        "ignored": 0,
        "expired_ignores": 0,
    }
    assert (
        result.tool_versions["pip-audit"]
        and "advisory-db:" in result.tool_versions["advisory_source"]
    )
    assert result.tool_versions["advisory_db_snapshot"].startswith("3ccb6125")
    assert {d["name"] for d in details["dependencies"]} >= {"Werkzeug", "six"}


def test_clean_pins_pass(tmp_path: Path) -> None:
    result, _ = audit_dependencies(
        requirements=_write(tmp_path, CLEAN_PINS), source=OFFLINE, today=TODAY
    )
    assert result.verdict is Verdict.PASS, result.findings
    assert result.metrics["vulnerabilities"] == 0 and result.metrics["packages_audited"] == 6
    assert result.findings == []  # includes: loguru's only record is withdrawn


@pytest.mark.parametrize(
    ("pin", "expected"),
    [
        ("werkzeug==2.3.7", {"PYSEC-2023-221"}),
        ("werkzeug==2.3.8", set()),  # fixed in the first interval
        ("werkzeug==3.0.0", {"PYSEC-2023-221"}),  # re-introduced in 3.0.0
        ("werkzeug==3.0.0rc1", set()),  # a pre-release sorts before "introduced: 3.0.0"
        ("werkzeug==3.0.1", set()),
        ("requests==2.3.0", {"PYSEC-2023-74"}),  # introduced is inclusive
        ("requests==2.31.0", set()),  # fixed is exclusive
        ("py==1.11.0", {"PYSEC-2022-42969"}),  # last_affected is inclusive
        ("py==1.11.1", set()),
        ("gratient==0.5.0", {"PYSEC-2024-1"}),  # 0.5 == 0.5.0 (PEP 440)
        ("binderhub==9.0.0", {"PYSEC-2021-371"}),  # fixed "0.2.0-n653" is not PEP 440
        ("apache-skywalking==8.0.0", {"PYSEC-2020-342"}),  # no fix at all
    ],
)
def test_osv_range_semantics(tmp_path: Path, pin: str, expected: set[str]) -> None:
    result, _ = audit_dependencies(
        requirements=_write(tmp_path, pin + "\n"), source=OFFLINE, today=TODAY
    )
    assert _ids(result.findings) == expected


def test_the_database_is_indexed_by_normalised_name() -> None:
    from pip_audit._service import ResolvedDependency

    from mlsecops_provider.core.supply_chain.advisory_db import AdvisoryDatabase

    database = AdvisoryDatabase(ADVISORIES)
    assert database.record_count == 9
    for name in ("Jinja2", "jinja2", "JINJA2"):
        _, results = database.query(ResolvedDependency(name=name, version=Version("2.10")))
        assert [r.id for r in results] == ["PYSEC-2021-66"]
    assert database.severity({"CVE-2020-13921"}).startswith("CVSS:3.1/AV:N")


def test_an_unusable_advisory_database_is_an_error(tmp_path: Path) -> None:
    requirements = _write(tmp_path, "six==1.16.0\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DependencyAuditError, match="no OSV records"):
        audit_dependencies(requirements=requirements, source=AdvisorySource(str(empty)))
    with pytest.raises(DependencyAuditError, match="not a directory"):
        audit_dependencies(requirements=requirements, source=AdvisorySource(str(tmp_path / "x")))
    broken = tmp_path / "broken"
    shutil.copytree(ADVISORIES, broken)
    (broken / "vulns" / "six").mkdir()
    (broken / "vulns" / "six" / "BAD-1.json").write_text("{not json")
    with pytest.raises(DependencyAuditError, match=r"BAD-1\.json: not a valid OSV record"):
        audit_dependencies(requirements=requirements, source=AdvisorySource(str(broken)))


# --- what is audited ------------------------------------------------------------------------


def test_unpinned_requirement_is_an_error_naming_the_line(tmp_path: Path) -> None:
    requirements = _write(tmp_path, "six==1.16.0\n\nrequests>=2.0\n")
    with pytest.raises(DependencyAuditError, match=r"requirements\.txt:3: 'requests>=2\.0' is not"):
        audit_dependencies(requirements=requirements, source=OFFLINE)


def test_includes_are_followed_and_a_missing_include_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "jinja2==2.10\n", "base.txt")
    result, _ = audit_dependencies(
        requirements=_write(tmp_path, "-r base.txt\nsix==1.16.0\n"), source=OFFLINE, today=TODAY
    )
    assert _ids(result.findings) == {"PYSEC-2021-66"}
    with pytest.raises(DependencyAuditError, match="missing.txt"):
        audit_dependencies(requirements=_write(tmp_path, "-r missing.txt\n"), source=OFFLINE)


def test_a_requirement_that_cannot_be_audited_fails_unless_allowed(tmp_path: Path) -> None:
    requirements = _write(tmp_path, "six==1.16.0\nfoo @ https://example.invalid/foo.whl\n")
    result, _ = audit_dependencies(requirements=requirements, source=OFFLINE)
    assert result.verdict is Verdict.FAIL and result.metrics["packages_skipped"] == 1
    assert result.findings[0]["status"] == "skipped"
    lenient = DependencyAuditConfig(fail_on_skipped=False)
    result, _ = audit_dependencies(requirements=requirements, source=OFFLINE, config=lenient)
    assert result.verdict is Verdict.WARN


def test_installed_environment_with_the_offline_database() -> None:
    result, details = audit_dependencies(installed=True, source=OFFLINE)
    assert result.verdict in (Verdict.PASS, Verdict.WARN, Verdict.FAIL)
    assert result.metrics["packages_audited"] > 100
    names = {canonicalize_name(d["name"]) for d in details["dependencies"]}
    assert {"pip-audit", "packaging"} <= names


# --- the ignore list ------------------------------------------------------------------------


def _policy_config(ignore: list[Any]) -> DependencyAuditConfig:
    policy = parse_policy({"gates": {"dependency_audit": {"ignore": ignore}}}, "test.yaml")
    return DependencyAuditConfig.from_policy(policy)


def test_valid_ignore_ignores_and_expired_ignore_stops_ignoring(tmp_path: Path) -> None:
    config = _policy_config(
        [
            # by alias, valid through the expiry day itself
            {"id": "CVE-2022-29361", "reason": "dev server only", "expires": TODAY},
            {"id": "PYSEC-2023-221", "reason": "was waiting for 2.3.8", "expires": "2026-05-31"},
        ]
    )
    result, details = audit_dependencies(
        requirements=_write(tmp_path, "werkzeug==2.0.0\n"),
        source=OFFLINE,
        config=config,
        today=TODAY,
    )
    assert _ids(result.findings, "ignored") == {"PYSEC-2022-203"}
    assert _ids(result.findings, "vulnerable") == {"PYSEC-2023-221"}
    assert result.verdict is Verdict.FAIL
    assert result.metrics["ignored"] == 1 and result.metrics["expired_ignores"] == 1
    assert [e["id"] for e in details["ignores"]["expired"]] == ["PYSEC-2023-221"]
    expired = next(f for f in result.findings if f["id"] == "PYSEC-2023-221")
    assert expired["ignore"]["expired"] is True
    sbom = json.loads(details["sbom"])
    analysed = [v for v in sbom["vulnerabilities"] if "analysis" in v]
    assert [v["id"] for v in analysed] == ["PYSEC-2022-203"]


def test_all_ignored_passes(tmp_path: Path) -> None:
    config = _policy_config(
        [{"id": "PYSEC-2021-66", "reason": "sandboxed templates only", "expires": "2027-01-01"}]
    )
    result, _ = audit_dependencies(
        requirements=_write(tmp_path, "jinja2==2.10\n"), source=OFFLINE, config=config, today=TODAY
    )
    assert result.verdict is Verdict.PASS and result.metrics["ignored"] == 1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"id": "X-1", "expires": "2027-01-01"}, r"ignore\[0\] \(X-1\): reason must be"),
        ({"id": "X-1", "reason": " ", "expires": "2027-01-01"}, r"reason must be a non-empty"),
        ({"id": "X-1", "reason": "r", "expires": "next year"}, r"expires must be an ISO date"),
        ({"id": "X-1", "reason": "r"}, r"ignore\[0\] \(X-1\): expires must be"),
        ({"reason": "r", "expires": "2027-01-01"}, r"ignore\[0\]: id must be"),
        ({"id": "X-1", "reason": "r", "expires": "2027-01-01", "by": "me"}, r"unknown field"),
        ("X-1", r"ignore\[0\]: must be a mapping"),
    ],
)
def test_malformed_ignore_entry_is_a_policy_error(entry: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as caught:
        _policy_config([entry])
    assert "test.yaml: gates.dependency_audit" in str(caught.value)


# --- the SBOM ---------------------------------------------------------------------------


def test_sbom_is_valid_cyclonedx_listing_the_packages(tmp_path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    result, details = audit_dependencies(
        requirements=_write(tmp_path, VULNERABLE_PINS), source=OFFLINE, today=TODAY
    )
    text = sbom_bytes(details).decode()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    sbom = json.loads(text)
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.6"
    assert {c["purl"] for c in sbom["components"]} == {
        "pkg:pypi/werkzeug@2.0.0",
        "pkg:pypi/jinja2@2.10",
        "pkg:pypi/requests@2.30.0",
        "pkg:pypi/py@1.11.0",
        "pkg:pypi/gratient@0.5",
        "pkg:pypi/six@1.16.0",
    }
    assert {v["id"] for v in sbom["vulnerabilities"]} == _ids(result.findings)
    digest = hashlib.sha256(sbom_bytes(details)).hexdigest()
    assert result.subjects["sbom"] == f"sha256:{digest}"


# --- OSV over HTTP (pip-audit's OsvService), fail closed ---------------------------------------


@pytest.fixture()
def no_proxy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # pip-audit's cache dir


def _serve(answer: Callable[[dict[str, Any]], tuple[int, bytes]]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, body = answer(query)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1/query"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def osv_server(no_proxy: None) -> Iterator[str]:
    """An OSV-compatible endpoint that knows one record (requests PYSEC-2023-74)."""
    record = json.loads((ADVISORIES / "vulns/requests/PYSEC-2023-74.json").read_text())

    def answer(query: dict[str, Any]) -> tuple[int, bytes]:
        hit = query["package"]["name"] == "requests" and query["version"] == "2.30.0"
        return 200, json.dumps({"vulns": [record]} if hit else {}).encode()

    yield from _serve(answer)


@pytest.fixture()
def broken_osv_server(no_proxy: None) -> Iterator[str]:
    yield from _serve(lambda query: (503, b'{"error": "maintenance"}'))


def test_osv_url_is_queried_through_pip_audit(tmp_path: Path, osv_server: str) -> None:
    source = AdvisorySource(osv_url=osv_server, cache_dir=str(tmp_path / "cache"))
    result, _ = audit_dependencies(
        requirements=_write(tmp_path, "requests==2.30.0\nsix==1.16.0\n"), source=source
    )
    assert _ids(result.findings) == {"PYSEC-2023-74"}
    assert result.tool_versions["advisory_source"] == f"osv:{osv_server}"


def test_unreachable_or_failing_osv_is_an_error(tmp_path: Path, broken_osv_server: str) -> None:
    requirements = _write(tmp_path, "six==1.16.0\n")
    for url in ("http://127.0.0.1:9/", broken_osv_server):
        source = AdvisorySource(osv_url=url, cache_dir=str(tmp_path / "cache"), timeout=5)
        with pytest.raises(AdvisorySourceError, match="did not answer"):
            audit_dependencies(requirements=requirements, source=source)


# --- the CLI --------------------------------------------------------------------------------


def test_cli_exit_codes_and_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli: Any
) -> None:
    db = ["--advisory-db", str(ADVISORIES)]
    clean = _write(tmp_path, CLEAN_PINS, "clean.txt")
    assert cli(["audit-deps", "--requirements", str(clean), *db]).code == 0
    vulnerable = _write(tmp_path, VULNERABLE_PINS, "vulnerable.txt")
    sbom, report = tmp_path / "out" / "sbom.json", tmp_path / "out" / "report.json"
    argv = ["audit-deps", "--requirements", str(vulnerable), *db]
    assert cli([*argv, "--sbom", str(sbom), "--report", str(report)]).code == 1
    out = capsys.readouterr().out
    assert "dependency_audit: fail" in out and "PYSEC-2022-203 (CVE-2022-29361)" in out
    assert json.loads(sbom.read_text())["bomFormat"] == "CycloneDX"
    payload = json.loads(report.read_text())
    assert payload["result"]["verdict"] == "fail" and "sbom" not in payload["details"]
    assert payload["details"]["sbom_uri"] == sbom.as_uri()


def test_cli_policy_ignores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli: Any
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\ngates:\n  dependency_audit:\n    ignore:\n"
        "      - {id: PYSEC-2021-66, reason: sandboxed templates only, expires: 2999-01-01}\n"
    )
    requirements = _write(tmp_path, "jinja2==2.10\n")
    argv = ["audit-deps", "--requirements", str(requirements), "--advisory-db", str(ADVISORIES)]
    assert cli([*argv, "--policy", str(policy)]).code == 0
    assert "[ignored]" in capsys.readouterr().out
    policy.write_text(policy.read_text().replace("reason: sandboxed templates only, ", ""))
    assert cli([*argv, "--policy", str(policy)]).code == 2
    assert "reason must be a non-empty string" in capsys.readouterr().err


def test_cli_could_not_check_exits_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_proxy: None,
    cli: Any,
) -> None:
    pinned = _write(tmp_path, "six==1.16.0\n")
    argv = ["audit-deps", "--requirements", str(pinned), "--osv-url", "http://127.0.0.1:9/"]
    assert cli(argv).code == 2
    err = capsys.readouterr().err.strip()
    assert "did not answer (cannot connect)" in err and "--advisory-db" in err
    assert len(err.splitlines()) == 1
    unpinned = _write(tmp_path, "six\n", "unpinned.txt")
    argv = ["audit-deps", "--requirements", str(unpinned), "--advisory-db", str(ADVISORIES)]
    assert cli(argv).code == 2
    assert "unpinned.txt:1: 'six' is not pinned" in capsys.readouterr().err
    # neither --requirements nor --installed: a usage error
    assert cli(["audit-deps", "--advisory-db", str(ADVISORIES)]).code == 2


def test_cli_installed_with_offline_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli: Any
) -> None:
    code = cli(["audit-deps", "--installed", "--advisory-db", str(ADVISORIES)]).code
    assert code in (0, 1)
    assert capsys.readouterr().out.startswith("dependency_audit: ")
