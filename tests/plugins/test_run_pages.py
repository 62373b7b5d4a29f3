"""The run page's pieces without the API: the decision in words, escaped; the pipeline strip."""

from __future__ import annotations

import re
from pathlib import Path

from mlsecops_provider.plugins.gate_data import RunView
from mlsecops_provider.plugins.run_details import Decision
from mlsecops_provider.plugins.run_pages import decision_html, pipeline


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def test_a_refusal_in_words_with_its_reasons_escaped() -> None:
    decision = Decision(
        state="refused",
        model="<img src=x>",
        version="3",
        alias="champion",
        previous="2",
        reasons=["gate model_scan: verdict fail: <script>alert(1)</script>"],
        audit={"seq": 9, "kind": "refusal", "time": "2026-01-01T00:00:00Z", "hash": "ab" * 32,
               "status": "intact", "entries": 9, "details": {"champion": "2"}},
    )  # fmt: skip
    html = decision_html(decision)
    assert "<script" not in html and "<img" not in html
    words = text(html)
    assert (
        "Promotion of &lt;img src=x&gt; v3 to @champion was refused; @champion stays v2." in words
    )
    assert "#9 refusal at 2026-01-01T00:00:00Z" in words and "chain intact, 9 entries" in words
    assert "none recorded (not required by the policy)" in words  # no approval


def test_a_broken_audit_chain_and_an_unverifiable_record_are_said() -> None:
    decision = Decision(
        state="promoted",
        model="m",
        version="2",
        alias="champion",
        previous="1",
        key_id="k" * 64,
        record={"uri": "file:///e/d/r/promotion/p.json", "sha256": "0" * 64,
                "status": "not verified", "problem": "signed by an unknown key"},
        audit={"seq": 4, "hash": "c" * 64, "status": "broken chain", "problem": "line 3 edited"},
    )  # fmt: skip
    words = text(decision_html(decision))
    assert "m v2 was promoted to @champion at an unrecorded time, replacing v1." in words
    assert "not verified — signed by an unknown key" in words
    assert "chain broken chain — line 3 edited" in words


def test_unverified_promotion_report() -> None:
    html = decision_html(Decision(state="unverified", reasons=["digest mismatch"]))
    assert "could not be verified: digest mismatch" in html


def test_pipeline_strip_in_order_with_states() -> None:
    steps = [
        {"task_id": "ingest", "state": "success", "gate": None, "verdict": None},
        {"task_id": "validate", "state": "failed", "gate": "data_validation", "verdict": "fail"},
        {"task_id": "train", "state": "upstream_failed", "gate": None, "verdict": None},
    ]
    run = RunView("d", "r", "failed", None, None, None, [], steps)
    strip = text(pipeline(run))
    assert strip == "ingest success→validate failed fail→train upstream_failed"


def test_records_and_audit_logs_outside_the_store_are_not_read(tmp_path: Path) -> None:
    from mlsecops_provider.core.evidence import EvidenceStore
    from mlsecops_provider.plugins.gate_evidence import GateView, Integrity
    from mlsecops_provider.plugins.run_details import promotion_decision

    store = EvidenceStore((tmp_path / "evidence").as_uri())
    (tmp_path / "secret.json").write_text("{}")
    sneaky = f"{store.root_uri}/dag/../../secret.json"
    details = {
        "registered_model": "m", "version": "2", "evidence_uri": sneaky,
        "evidence_sha256": "0" * 64, "audit": {"uri": sneaky, "seq": 1, "hash": "0" * 64},
    }  # fmt: skip
    promotion = GateView(
        "promote", -1, "success", "promotion", "pass", Integrity.VERIFIED, details=details
    )
    run = RunView("dag", "r", "success", None, None, None, [promotion])
    decision = promotion_decision(run, store, dict)
    assert decision is not None and decision.state == "promoted"
    assert decision.record["status"] == "unreadable" and decision.audit["status"] == "unreadable"
