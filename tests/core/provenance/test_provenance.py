"""SLSA Provenance v1 statements: building, digests of code and environment, validation."""

from __future__ import annotations

import copy
import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.data.datasets import DatasetRef
from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.evidence import GateResult, Verdict
from mlsecops_provider.core.hashing import hash_path
from mlsecops_provider.core.provenance.slsa import (
    SLSA_PROVENANCE_TYPE,
    STATEMENT_TYPE,
    Resource,
    RunInfo,
    build_statement,
    code_digest,
    environment_digest,
    model_subject,
    rfc3339,
    statement_bytes,
    validate_statement,
)

SHA_A = "a" * 64
START = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def make_model(root: Path) -> Path:
    (root / "model" / "data").mkdir(parents=True)
    (root / "model" / "MLmodel").write_text("flavors: {}\n")
    (root / "model" / "model.skops").write_bytes(b"\x00weights" * 1000)
    (root / "model" / "data" / "vocab.json").write_text("{}")
    return root / "model"


def model_signing_digest(path: Path) -> str:
    import model_signing.hashing

    root = hashlib.sha256()
    for descriptor in model_signing.hashing.hash(path).resource_descriptors():
        root.update(descriptor.digest.digest_value)
    return root.hexdigest()


def sample_statement(tmp_path: Path) -> dict[str, Any]:
    model = make_model(tmp_path)
    dataset = DatasetRef("s3://bucket/data/train.parquet", SHA_A, 10, ("x", "y"), "parquet")
    gate = GateResult(
        gate="model_scan",
        verdict=Verdict.PASS,
        evidence_uri="file:///evidence/model_scan.json",
        evidence_sha256="b" * 64,
    )
    run = RunInfo.for_dag_run(
        "https://airflow.example/mlsecops", "train", "manual__1", START, START + timedelta(1)
    )
    return build_statement(
        model_subject(model, name="credit-model"),
        run,
        external_parameters={"dag_conf": {"epochs": 3}, "hyperparameters": {"C": 0.5}},
        internal_parameters={"python": "3.11"},
        dependencies=[
            Resource.from_dataset(dataset),
            Resource("base_model", "sha256:" + "c" * 64, uri="models:/base/1"),
            environment_digest().resource(),
        ],
        byproducts=[Resource.from_gate(gate)],
    )


def test_statement_shape_and_subject_equals_model_signing(tmp_path: Path) -> None:
    statement = sample_statement(tmp_path)
    validate_statement(statement)
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["predicateType"] == SLSA_PROVENANCE_TYPE
    subject = statement["subject"][0]
    assert subject["name"] == "credit-model"
    assert subject["digest"]["sha256"] == model_signing_digest(tmp_path / "model")
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"]["hyperparameters"] == {"C": 0.5}
    deps = {d["name"]: d for d in build["resolvedDependencies"]}
    assert deps["train.parquet"] == {
        "name": "train.parquet",
        "uri": "s3://bucket/data/train.parquet",
        "digest": {"sha256": SHA_A},
    }
    assert deps["base_model"]["digest"]["sha256"] == "c" * 64
    run = statement["predicate"]["runDetails"]
    assert run["metadata"] == {
        "invocationId": "train/manual__1",
        "startedOn": "2026-11-02T09:30:00.000Z",
        "finishedOn": "2026-11-03T09:30:00.000Z",
    }
    assert run["byproducts"][0]["name"] == "gate:model_scan"
    assert statement_bytes(statement) == statement_bytes(copy.deepcopy(statement))


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("_type",), "https://in-toto.io/Statement/v0.1", "_type"),
        (("subject",), [], "subject: must not be empty"),
        (("subject", 0, "digest", "sha256"), "ABC", r"subject\[0\]\.digest\.sha256"),
        (("predicateType",), None, "predicateType"),
        (("predicate", "buildDefinition", "buildType"), 3, "buildDefinition.buildType"),
        (("predicate", "buildDefinition", "externalParameters"), [], "externalParameters"),
        (
            ("predicate", "buildDefinition", "resolvedDependencies", 1, "digest"),
            {"md5": "ab"},
            r"resolvedDependencies\[1\]\.digest\.sha256",
        ),
        (("predicate", "runDetails", "builder"), {}, "runDetails.builder.id"),
        (("predicate", "runDetails", "metadata", "startedOn"), "yesterday", "startedOn"),
        (
            ("predicate", "runDetails", "metadata", "finishedOn"),
            "2026-11-01T00:00:00Z",
            "finishedOn: is before startedOn",
        ),
        (("predicate", "runDetails", "byproducts", 0), "report", r"byproducts\[0\]"),
    ],
)
def test_validator_names_the_bad_field(
    tmp_path: Path, path: tuple[Any, ...], value: Any, field: str
) -> None:
    statement = sample_statement(tmp_path)
    target: Any = statement
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(DataError, match=field):
        validate_statement(statement)


def test_missing_top_level_field_and_non_json_parameters(tmp_path: Path) -> None:
    statement = sample_statement(tmp_path)
    del statement["predicate"]["runDetails"]
    with pytest.raises(DataError, match="predicate.runDetails: missing"):
        validate_statement(statement)
    run = RunInfo("builder", "dag/run", START.isoformat(), START.isoformat())
    with pytest.raises(DataError, match="externalParameters: not JSON-serialisable"):
        build_statement(Resource("m", SHA_A), run, external_parameters={"at": START})


def test_resources_and_times_fail_closed() -> None:
    assert Resource("m", "sha256:" + SHA_A).sha256 == SHA_A
    with pytest.raises(DataError, match="not 64 hex"):
        Resource("m", "abc")
    with pytest.raises(DataError, match="gate data_validation: has no evidence_uri"):
        Resource.from_gate(GateResult(gate="data_validation", verdict=Verdict.PASS))
    with pytest.raises(DataError, match="has no time zone"):
        rfc3339("2026-11-02T09:30:00")
    tz = timezone(timedelta(hours=2))
    assert rfc3339(datetime(2026, 11, 2, 11, 30, tzinfo=tz)) == "2026-11-02T09:30:00.000Z"


def test_environment_digest_lists_installed_distributions() -> None:
    from importlib import metadata

    env = environment_digest()
    assert f"model-signing=={metadata.version('model-signing')}" in env.packages
    assert list(env.packages) == sorted(env.packages)
    assert env.sha256 == hashlib.sha256(env.lock_text.encode()).hexdigest()
    assert env.resource().descriptor()["digest"] == {"sha256": env.sha256}


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=20,
    )
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_code_digest_with_and_without_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "dags").mkdir(parents=True)
    (repo / "include").mkdir()
    (repo / "dags" / "train.py").write_text("print('train')\n")
    (repo / "include" / "policy.yaml").write_text("version: 1\n")
    plain = code_digest([repo / "dags", repo / "include"])
    assert plain.git_commit is None and plain.git_dirty is None
    expected = "".join(
        f"{hash_path(repo / name).root_digest}  {name}\n" for name in ("dags", "include")
    )
    assert plain.sha256 == hashlib.sha256(expected.encode()).hexdigest()

    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "init")
    code = code_digest([repo / "dags", repo / "include"])
    assert code.git_commit == _git(repo, "rev-parse", "HEAD")
    assert code.git_dirty is False
    assert code.resource().descriptor()["digest"]["gitCommit"] == code.git_commit
    (repo / "dags" / "train.py").write_text("print('changed')\n")
    changed = code_digest([repo / "dags", repo / "include"])
    assert changed.git_dirty is True and changed.sha256 != code.sha256
    with pytest.raises(DataError, match="two paths are named 'dags'"):
        code_digest([repo / "dags", repo / "dags"])
