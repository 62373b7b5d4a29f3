"""Red team, trust chain: the review UI shows a user only their DAGs' evidence, and no more.

The attacker is a UI user who may read some DAGs: they pick a DAG id whose evidence folder
collides with another DAG's, or probe the evidence route for digests and paths.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from fastapi import HTTPException

from mlsecops_provider.core.evidence import EvidenceStore, GateResult, evidence_segment
from mlsecops_provider.plugins import gate_api, gate_evidence

LOOKALIKES = [
    "a:b", "a_b", "a.b", "a-b", "a=3Ab", "a b", "a/b", "a%3Ab", "A_b", ".a", "=2Ea", "a.",
    "a..b", "ä", "a\u00e4", "..", ".", "_a", "a__b", "a_", "x" * 3, "x=3D", "x=",
]  # fmt: skip


def test_two_dag_ids_never_share_an_evidence_folder() -> None:
    """The path escape is injective: look-alike DAG ids map to distinct, safe segments."""
    segments = {value: evidence_segment(value) for value in LOOKALIKES}
    assert len(set(segments.values())) == len(LOOKALIKES)
    for a, b in itertools.combinations(LOOKALIKES, 2):
        assert segments[a] != segments[b], (a, b)
    for segment in segments.values():
        assert segment not in (".", "..") and not segment.startswith(".") and "/" not in segment
        assert gate_evidence._SEGMENT.fullmatch(segment), segment


def test_report_of_a_lookalike_dag_is_forbidden(tmp_path: Path) -> None:
    """A user who may read only ``team_a`` cannot read ``team.a``'s report (403)."""
    store = EvidenceStore((tmp_path / "evidence").as_uri())
    stored = store.put_report(
        "team.a", "run_1", GateResult(gate="model_scan", verdict="pass"), {"secret": 1}
    )
    assert gate_evidence.dag_for_segment(evidence_segment("team.a"), {"team_a"}) is None
    with pytest.raises(HTTPException) as denied:
        gate_api.evidence({"team_a"}, store, str(stored.evidence_uri), str(stored.evidence_sha256))
    assert denied.value.status_code == 403
    ok = gate_api.evidence({"team.a"}, store, str(stored.evidence_uri), str(stored.evidence_sha256))
    assert ok.status_code == 200


def test_wrong_digest_409_does_not_echo_the_actual_digest(tmp_path: Path) -> None:
    """A 409 names the digest the client sent, never the one the file has (no oracle)."""
    store = EvidenceStore((tmp_path / "evidence").as_uri())
    stored = store.put_report("dag_a", "run_1", GateResult(gate="scan", verdict="pass"), {})
    wrong = "0" * 64
    with pytest.raises(HTTPException) as conflict:
        gate_api.evidence({"dag_a"}, store, str(stored.evidence_uri), wrong)
    assert conflict.value.status_code == 409
    detail = str(conflict.value.detail)
    assert str(stored.evidence_sha256) not in detail and wrong in detail


def test_errors_echo_no_local_path_or_store_root(tmp_path: Path) -> None:
    """404 and 400 name only the URI the client sent, not the store's root or a file path."""
    root = (tmp_path / "evidence").as_uri()
    store = EvidenceStore(root)
    missing = f"{root}/dag_a/run_1/scan/report.json"
    with pytest.raises(HTTPException) as absent:
        gate_api.evidence({"dag_a"}, store, missing, "1" * 64)
    assert absent.value.status_code == 404 and str(tmp_path) not in str(
        absent.value.detail
    ).replace(missing, "")
    outside = "file:///etc/passwd"
    with pytest.raises(HTTPException) as refused:
        gate_api.evidence({"dag_a"}, store, outside, "1" * 64)
    assert refused.value.status_code == 400 and root not in str(refused.value.detail)
