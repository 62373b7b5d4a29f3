"""Backdoor (BadNets: Gu, Dolan-Gavitt, Garg, 2017, here on tabular data): 3% of the training
rows carry two feature values at the very edge of their range and the target label; the
trigger search finds the pattern by name and value, the reference refit shows that those
rows planted it, and the carrying rows are quarantined. The same search on the clean data
(label noise only) passes.
"""

from __future__ import annotations

from sklearn.ensemble import GradientBoostingClassifier

from mlsecops_provider.core.attacks.gate import backdoor_scan
from mlsecops_provider.core.evidence import Verdict
from tests.core.attacks._models import LABEL, loaded, noisy_task
from tests.core.attacks.test_backdoor import plant


def test_attack_backdoor_trigger_at_the_range_edge() -> None:
    """Proves: a planted edge-value trigger fails the gate and its rows are quarantined."""
    clean = noisy_task(1000, 10, seed=9, flip=0.04)
    poisoned, rows = plant(clean, 0.03, seed=3)
    gb = GradientBoostingClassifier(n_estimators=50, random_state=0)
    model = loaded(gb.fit(poisoned.drop(columns=LABEL), poisoned[LABEL]), "poisoned")
    result, details = backdoor_scan(poisoned, LABEL, model, None)
    assert result.verdict is Verdict.FAIL
    assert set(rows.tolist()) <= set(details["quarantined_row_positions"])
    gb = GradientBoostingClassifier(n_estimators=50, random_state=0)
    honest = loaded(gb.fit(clean.drop(columns=LABEL), clean[LABEL]), "clean")
    assert backdoor_scan(clean, LABEL, honest, None)[0].verdict is Verdict.PASS
