"""The pictures without the API: SVG builders, shapes recognised, prediction-log windows."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from mlsecops_provider.core.evidence import GateResult
from mlsecops_provider.plugins import charts, pictures, serving_log
from mlsecops_provider.plugins.gate_evidence import GateView, Integrity

HOSTILE = '<script>alert(1)</script>" onload="x'


def gate(details: dict[str, Any], **fields: Any) -> GateView:
    base = {"task_id": "t", "map_index": -1, "task_state": "success", "gate": "g"}
    base.update(verdict="pass", integrity=Integrity.VERIFIED, details=details)
    return GateView(**{**base, **fields})


def test_labels_are_escaped_and_non_numbers_dropped() -> None:
    svg = charts.bars("t", [(HOSTILE, 0.5, "bad"), ("nan", math.nan, "bad"), ("s", "1", "x")])
    assert "<script" not in svg and "onload=" not in svg.replace('onload="x', "")
    assert "&lt;script&gt;" in svg
    assert svg.count("<rect") == 1  # NaN and the string are not drawn
    assert 'fill="#718096"' not in svg  # unknown tones fall back to the fixed table only
    assert charts.bars("t", [("a", math.inf, "good")]) == ""
    assert charts.intervals("t", []) == "" and charts.lines("t", [("a", 1)]) == ""


def test_numbers_are_rounded_for_people() -> None:
    assert charts.short(0.7369477911646586) == "0.737"
    assert charts.short(94110.0) == "94,110"
    assert charts.short(0.0261, signed=True) == "+0.0261"
    assert charts.short(1e-12) == "1.00e-12"


def test_real_fairness_report_shape_gives_interval_charts() -> None:
    def rates(value: float) -> dict[str, Any]:
        return {"selection_rate": {"value": value, "ci": [value - 0.05, value + 0.05]}}

    groups = [
        {
            "group": "F",
            "size": 300,
            "judged": True,
            "candidate": rates(0.3),
            "champion": rates(0.2),
        },
        {"group": "M", "size": 280, "judged": True, "candidate": rates(0.4)},
        {"group": "X", "size": 3, "judged": False, "candidate": rates(0.9)},
    ]
    figures = pictures.gate_pictures(gate({"columns": {"sex": {"groups": groups}}}))
    (svg,) = figures
    assert 'aria-label="selection_rate by sex"' in svg
    assert "F (champion)" in svg and "X (too small)" in svg
    assert svg.count("<circle") == 4


def test_unverified_reports_give_no_picture() -> None:
    details = {"importance": [{"feature": "a", "mean_abs_shap": 1.0, "share": 1.0}]}
    assert pictures.gate_pictures(gate(details))
    assert pictures.gate_pictures(gate(details, integrity=Integrity.TAMPERED)) == []


def test_prediction_log_windows_from_a_verified_log(tmp_path: Path) -> None:
    from mlsecops_provider.core.serving.prediction_log import PredictionLog

    root = tmp_path.as_uri()
    uri = f"{root}/serving/log"
    writer = PredictionLog(uri, batch_rows=10)
    rows = [
        {
            "request_id": f"r{i}",
            "row": 0,
            "time": f"2026-01-01T00:{i:02d}:00+00:00",
            "champion_prediction": "1",
            "shadow_prediction": "1" if i < 12 else "0",
            "champion_latency_ms": 2.0,
            "shadow_latency_ms": 3.0 + i,
            "shadow_status": "ok",
            "shadow_version": "2",
        }
        for i in range(24)
    ]
    writer.append(rows)
    writer.flush()
    read = serving_log.reader(root)
    found = read(uri, "2")
    assert len(found) == serving_log.BUCKETS
    assert found[0]["agreement"] == 1.0 and found[-1]["agreement"] == 0.0
    view = gate({}, gate="shadow_warmup", subjects={"log": uri}, metrics={"shadow_version": "2"})
    labels = re.findall(r'aria-label="([^"]*)"', "".join(pictures.gate_pictures(view, read)))
    assert labels == [
        "Champion–shadow agreement over time",
        "Prediction latency over time (ms)",
        "Shadow latency over time (median ms)",
    ]
    assert serving_log.reader(f"{root}/elsewhere")(uri, "2") == []  # outside the store
    assert serving_log.reader(root)(f"{root}/serving/../serving/log", "2") == []


def test_tampered_prediction_log_gives_no_windows(tmp_path: Path) -> None:
    from mlsecops_provider.core.serving.prediction_log import PredictionLog

    uri = f"{tmp_path.as_uri()}/serving/log"
    writer = PredictionLog(uri, batch_rows=5)
    writer.append(
        [
            {"request_id": f"r{i}", "row": 0, "time": str(i), "champion_prediction": "1",
             "shadow_prediction": "1", "shadow_status": "ok"}
            for i in range(10)
        ]
    )  # fmt: skip
    writer.flush()
    assert serving_log.reader(tmp_path.as_uri())(uri, None)  # intact: read
    serving_log._cache.clear()
    batch = next((tmp_path / "serving" / "log" / "batches").iterdir())
    batch.write_bytes(batch.read_bytes()[:-8] + b"\0" * 8)
    assert serving_log.reader(tmp_path.as_uri())(uri, None) == []


def test_gate_view_keeps_the_verified_subjects(tmp_path: Path) -> None:
    from mlsecops_provider.core.evidence import EvidenceStore
    from mlsecops_provider.plugins.gate_evidence import verify_gate

    store = EvidenceStore(tmp_path.as_uri())
    result = GateResult(gate="shadow_warmup", verdict="pass", subjects={"log": "file:///x"})
    stored = store.put_report("dag_a", "run_1", result, {})
    view = verify_gate(store, "dag_a", ("w", -1), {"return_value": stored.summary()}, {})
    assert view.subjects == {"log": "file:///x"}


def test_fairness_and_explainability_comparisons() -> None:
    from mlsecops_provider.plugins.gate_data import RunView
    from mlsecops_provider.plugins.run_details import comparisons

    fairness = gate(
        {
            "columns": {
                "sex": {
                    "disparities": {
                        "equalized_odds_difference": {
                            "candidate": 0.08, "champion": 0.12, "delta": -0.04,
                            "delta_ci": [-0.07, -0.01],
                        },
                        "demographic_parity_ratio": {"candidate": 0.9, "champion": None},
                    }
                }
            }
        },
        gate="fairness",
    )  # fmt: skip
    moved = [{"feature": "age", "candidate_share": 0.3, "champion_share": 0.1, "change": 0.2}]
    explain = gate({"drift": {"moved_most": moved}}, gate="explainability", task_id="e")
    unverified = gate({"drift": {"moved_most": moved}}, integrity=Integrity.TAMPERED)
    run = RunView("d", "r", "success", None, None, None, [fairness, explain, unverified])
    rows = {r["metric"]: r for r in comparisons(run)}
    assert set(rows) == {"equalized_odds_difference (sex)", "importance share: age"}
    eod = rows["equalized_odds_difference (sex)"]
    assert eod["higher_is_better"] is False and eod["delta_ci"] == [-0.07, -0.01]
    assert math.isclose(rows["importance share: age"]["delta"], 0.2)
