"""``mlsecops privacy-risk``, ``adversarial`` and ``backdoor-scan`` on saved (skops) models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from mlsecops_provider.core.cli.main import main
from mlsecops_provider.core.data.datasets import read_table, write_table
from tests.core.attacks._models import LABEL, margin_task, noisy_task, save
from tests.core.attacks.test_backdoor import plant

FAST = {
    "privacy_risk": {"bootstrap_resamples": 200},
    "adversarial": {"time_budget_seconds": 1.0, "min_black_box_rows": 3, "chunk_rows": 3,
                    "max_iter": 3, "transfer_rows": 200},
}  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("attack-cli")


@pytest.fixture(scope="module")
def policy(root: Path) -> str:
    path = root / "policy.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "gates": FAST}))
    return str(path)


def table(frame: pd.DataFrame, path: Path) -> str:
    write_table(frame, path.as_uri())
    return str(path)


def test_privacy_risk_exit_codes(root: Path, policy: str, capsys: pytest.CaptureFixture) -> None:
    data = noisy_task(1000, seed=8)
    train, holdout = data.iloc[:500], data.iloc[500:]
    x, y = train.drop(columns=LABEL), train[LABEL]
    deep = save(RandomForestClassifier(50, random_state=0).fit(x, y), root / "deep")
    shallow = RandomForestClassifier(50, max_depth=3, min_samples_leaf=20, random_state=0)
    shallow_dir = save(shallow.fit(x, y), root / "shallow")
    files = ["--train", table(train, root / "tr.parquet"), "--holdout",
             table(holdout, root / "ho.parquet"), "--label", LABEL, "--policy", policy]  # fmt: skip
    report = root / "privacy.json"
    assert main(["privacy-risk", "--model", deep, *files, "--report", str(report)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("privacy_risk: FAIL") and "candidate: AUC" in out
    saved = json.loads(report.read_text())
    assert saved["result"]["subjects"]["dataset:train"].startswith("sha256:")
    assert main(["privacy-risk", "--model", shallow_dir, *files, "--baseline", deep]) == 0
    overlap = table(pd.concat([holdout, train.iloc[:3]]), root / "overlap.parquet")
    args = ["privacy-risk", "--model", deep, "--train", files[1], "--holdout", overlap]
    assert main([*args, "--label", LABEL, "--policy", policy]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "shares 3 row(s) with the training data" in err


def test_adversarial_exit_codes(root: Path, policy: str, capsys: pytest.CaptureFixture) -> None:
    data = margin_task(400)[["f0", "f1", "f2", "f3", LABEL]]
    x, y = data.drop(columns=LABEL), data[LABEL].to_numpy()
    noisy = np.where(np.random.default_rng(0).random(len(y)) < 0.15, 1 - y, y)
    robust = save(LogisticRegression().fit(x, y), root / "robust")
    fragile = save(DecisionTreeClassifier(random_state=0).fit(x, noisy), root / "fragile")
    common = ["--data", table(data, root / "adv.parquet"), "--label", LABEL, "--policy", policy]
    assert main(["adversarial", "--model", fragile, "--baseline", robust, *common]) == 1
    out = capsys.readouterr().out
    assert "adversarial: FAIL" in out and "min-max-scaled" in out
    assert main(["adversarial", "--model", robust, "--baseline", fragile, *common]) == 0
    with pytest.raises(SystemExit) as usage:
        main(["adversarial", "--model", robust, *common, "--epsilon", "2"])
    assert usage.value.code == 2


def test_backdoor_scan_quarantines(root: Path, capsys: pytest.CaptureFixture) -> None:
    poisoned, rows = plant(noisy_task(1000, 10, seed=5, flip=0.03), 0.03)
    model = GradientBoostingClassifier(n_estimators=50, random_state=0)
    path = save(model.fit(poisoned.drop(columns=LABEL), poisoned[LABEL]), root / "bd")
    data = table(poisoned, root / "bd.parquet")
    quarantine = root / "quarantine.parquet"
    code = main(["backdoor-scan", "--model", path, "--data", data, "--label", LABEL,
                 "--quarantine", str(quarantine)])  # fmt: skip
    assert code == 1
    assert "backdoor_scan: FAIL" in capsys.readouterr().out
    held, _ = read_table(quarantine.as_uri())
    assert len(held) >= len(rows) and (held["f9"] == poisoned["f9"].min()).all()
