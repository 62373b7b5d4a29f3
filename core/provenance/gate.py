"""The provenance gate: re-verify every input by digest and write the SLSA statement.

It hashes the model exactly as OpenSSF model-signing does (so the statement's subject and a
later model signature agree), digests the code and the environment, checks that each dataset
still has the digest recorded when it was produced, and lists the gate reports as byproducts.
A dataset whose bytes changed, or that cannot be read, fails the gate (fail closed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from mlsecops_provider.core.data.datasets import DatasetRef
from mlsecops_provider.core.errors import MLSecOpsError
from mlsecops_provider.core.evidence import GateResult, Verdict
from mlsecops_provider.core.hashing import hash_path
from mlsecops_provider.core.provenance.slsa import (
    Resource,
    RunInfo,
    build_statement,
    code_digest,
    environment_digest,
)
from mlsecops_provider.core.storage import S3ClientFactory, read_verified, storage_for

log = logging.getLogger(__name__)
GATE = "provenance"


def verify_datasets(
    datasets: Mapping[str, DatasetRef], s3_client_factory: S3ClientFactory | None = None
) -> list[dict[str, Any]]:
    """Read each dataset back and compare digests; return findings for those that differ."""
    findings = []
    for name, ref in datasets.items():
        try:
            read_verified(storage_for(ref.uri, s3_client_factory), ref.uri, ref.sha256)
        except MLSecOpsError as err:
            findings.append(
                {"dataset": name, "uri": ref.uri, "severity": "critical", "reason": str(err)}
            )
    return findings


def gate_byproducts(summaries: Sequence[Mapping[str, Any]]) -> list[Resource]:
    """Gate reports (from their XCom summaries) as statement byproducts."""
    return [
        Resource(
            name=f"gate:{s['gate']}", sha256=str(s["evidence_sha256"]), uri=str(s["evidence_uri"])
        )
        for s in summaries
        if s and s.get("evidence_uri") and s.get("evidence_sha256")
    ]


def provenance_gate(
    model_dir: str,
    model_name: str,
    datasets: Mapping[str, DatasetRef],
    gate_summaries: Sequence[Mapping[str, Any]],
    run: RunInfo,
    *,
    external_parameters: Mapping[str, Any],
    code_paths: Sequence[str],
    s3_client_factory: S3ClientFactory | None = None,
) -> tuple[GateResult, dict[str, Any]]:
    """Hash, verify and describe one training run; the statement is the gate's details."""
    model = hash_path(model_dir)
    subject = Resource(name=model_name, sha256=model.root_digest)
    code = code_digest(code_paths)
    environment = environment_digest()
    dependencies = [Resource.from_dataset(ref, name=f"dataset:{n}") for n, ref in datasets.items()]
    dependencies += [code.resource(), environment.resource()]
    statement = build_statement(
        subject,
        run,
        external_parameters=external_parameters,
        internal_parameters={
            "environment": list(environment.packages),
            "code_parts": dict(code.parts),
        },
        dependencies=dependencies,
        byproducts=gate_byproducts(gate_summaries),
    )
    findings = verify_datasets(datasets, s3_client_factory)
    verdict = Verdict.FAIL if findings else Verdict.PASS
    message = (
        f"{len(findings)} input(s) changed since they were recorded"
        if findings
        else f"model sha256 {model.root_digest[:12]}…, {len(datasets)} dataset(s) verified"
    )
    result = GateResult(
        gate=GATE,
        verdict=verdict,
        subjects={
            "model": model.root_digest,
            **{f"dataset:{n}": r.sha256 for n, r in datasets.items()},
        },
        metrics={
            "model_files": len(model.files),
            "datasets_verified": len(datasets) - len(findings),
        },
        findings=findings,
        tool_versions={"code_git_commit": code.git_commit or "unknown"},
        message=message,
    )
    return result, {"statement": statement, "model_manifest": model.to_dict()}
