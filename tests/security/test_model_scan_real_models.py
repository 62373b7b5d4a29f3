"""Deny by construction still passes real models whose pickles name functions or read an
attribute by name: fitted searches keep their metric functions (``scoring="f1"``), random
searches keep scipy distributions, and tz-aware timestamps pickle ``pytz._p`` or
``getattr(zoneinfo.ZoneInfo, "_unpickle")``. Any other ``getattr`` stays critical, in the
scan and at load time.

Write-up: picklescan GHSA-955r-x9j8-7rhh / GHSA-46h3-79wf-xr6c (attribute access by name
through ``_operator``/``getattr`` reaching ``os``): reading an attribute by name is refused
unless it is the one reconstructor pickle itself writes.
"""

from __future__ import annotations

import datetime
import io
import pickle
import zoneinfo
from pathlib import Path

import numpy as np
import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import scan_model
from mlsecops_provider.core.scan.pickle.allowlist import Allowlist
from mlsecops_provider.core.scan.pickle.restricted import restricted_unpickler
from mlsecops_provider.core.scan.safe_load import safe_loads
from tests.core.scan.malicious_corpus import CMD, P2, STOP, call, glob, ustr


def _models() -> dict[str, object]:
    import pandas as pd
    import scipy.stats as stats
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    features, labels = np.random.default_rng(0).random((60, 4)), np.arange(60) % 2
    grid = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2,
                        scoring=["roc_auc", "f1", "neg_log_loss"], refit="roc_auc")  # fmt: skip
    search = RandomizedSearchCV(LogisticRegression(), {"C": stats.loguniform(0.01, 10)}, n_iter=2,
                                cv=2, random_state=0)  # fmt: skip
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    models = {
        "grid_search_scoring": grid.fit(features, labels),
        "randomized_search_scipy": search.fit(features, labels),
        "zoneinfo_timestamps": pd.Series(pd.date_range("2026-01-01", periods=3, tz=paris)),
        "zoneinfo_datetime": {"trained_at": datetime.datetime(2026, 1, 1, tzinfo=paris)},
    }
    try:
        import pytz

        tz = pytz.timezone("Europe/Paris")
        models["pytz_timestamps"] = pd.Series(pd.date_range("2026-01-01", periods=3, tz=tz))
    except ImportError:
        pass
    return models


MODELS = _models()


@pytest.mark.parametrize("protocol", [0, 2, 5])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_real_model_passes_and_loads(name: str, protocol: int, tmp_path: Path) -> None:
    """The scan passes (modelscan's getattr alarm becomes info where ours vetted it) and
    safe_load returns the object."""
    data = pickle.dumps(MODELS[name], protocol)
    (tmp_path / "model.pkl").write_bytes(data)
    result = scan_model(tmp_path / "model.pkl")
    assert result.verdict is Verdict.PASS, result.findings
    assert type(safe_loads(data, "model.pkl")) is type(MODELS[name])


GETATTR_ABUSE = {
    "getattr_module_function": call(call(glob("builtins", "getattr"), glob("os", "path"),
                                         ustr("join")), ustr(CMD)),
    "getattr_other_classmethod": call(call(glob("builtins", "getattr"),
                                           glob("collections", "OrderedDict"), ustr("fromkeys")),
                                      ustr("ab")),
    "getattr_kept_as_value": b"(" + glob("builtins", "getattr") + b"l",
    "getattr_passed_to_partial": call(glob("functools", "partial"), glob("builtins", "getattr")),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(GETATTR_ABUSE))
def test_getattr_outside_the_reconstructor_is_critical(name: str, tmp_path: Path) -> None:
    """getattr on anything else, kept, or passed on is critical and refused at load time."""
    data = P2 + GETATTR_ABUSE[name] + STOP
    (tmp_path / "model.pkl").write_bytes(data)
    result = scan_model(tmp_path / "model.pkl")
    assert result.verdict is Verdict.FAIL
    assert any(f["severity"] == "critical" and f["scanner"] == "mlsecops" for f in result.findings)
    unpickler = restricted_unpickler(pickle.Unpickler, Allowlist())(io.BytesIO(data))
    if name.startswith("getattr_kept") or name.endswith("partial"):
        return  # loading yields a getattr that only allows the reconstructor: harmless
    with pytest.raises(pickle.UnpicklingError):
        unpickler.load()
