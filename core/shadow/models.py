"""Load the candidate and champion models of a shadow evaluation from MLflow model URIs.

A URI is ``models:/name/3``, ``models:/name@alias``, ``runs:/<id>/model``, a ``file://`` or
``s3://`` location, or a local model directory. The artifacts are downloaded into a folder
(their size and model-signing root digest are recorded). An sklearn model saved as skops is
loaded with skops and an allowlist of our own (every ``sklearn.*`` type plus any named in the
policy), never with the list the model's MLmodel file declares; a model of another format
loads through ``mlflow.pyfunc``, which refuses pickles unless
``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import ConfigError, DataError, LineageError, NotFoundError
from mlsecops_provider.core.hashing import model_signing_root_digest
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.shadow.stats import CLASSIFICATION, REGRESSION, Predictions
from mlsecops_provider.core.tracking.registry import alias_version, download_model

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)
TRUSTED_PREFIXES = ("sklearn.",)
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/]+))/?$")


@dataclass(frozen=True)
class ModelIdentity:
    """A registered model version a URI names (``None`` parts: not a registry URI)."""

    uri: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None

    @property
    def pinned_uri(self) -> str:
        """``models:/name/version`` when the version is known (an alias may move meanwhile)."""
        if self.name and self.version:
            return f"models:/{self.name}/{self.version}"
        return self.uri


def parse_model_uri(uri: str) -> ModelIdentity:
    match = _MODELS_URI.match(uri)
    if not match:
        return ModelIdentity(uri)
    return ModelIdentity(uri, match["name"], match["version"], match["alias"])


def resolve_identity(
    settings: Settings, uri: str, first_model_ok: bool = False
) -> ModelIdentity | None:
    """Pin an alias URI to its version; None when the model exists but the alias is not set.

    With ``first_model_ok`` a registered model that does not exist yet is also None (the
    candidate will be its first version); otherwise it is an error, so that a misspelled name
    never passes for "no champion yet".
    """
    identity = parse_model_uri(uri)
    if identity.alias is None or identity.name is None:
        return identity
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    version = alias_version(client, identity.name, identity.alias)
    if version is not None:
        return ModelIdentity(uri, identity.name, version, identity.alias)
    try:  # a wrong name must not pass for "no champion yet"
        client.get_registered_model(identity.name)
    except Exception as err:
        if "RESOURCE_DOES_NOT_EXIST" in str(err) or "not found" in str(err).lower():
            if first_model_ok:
                log.info("No registered model %s yet: the candidate is the first", identity.name)
                return None
            raise NotFoundError(f"{uri}: no registered model {identity.name!r}") from err
        raise LineageError(f"cannot read registered model {identity.name!r}: {err}") from err
    return None


@dataclass
class LoadedModel:
    """A model ready to predict, with what the report records about it."""

    identity: ModelIdentity
    local_path: str
    size_bytes: int
    digest: str
    flavor: str
    model: Any = field(repr=False)
    input_columns: tuple[str, ...] | None = None

    @property
    def classes(self) -> list[Any] | None:
        classes = getattr(self.model, "classes_", None)
        return None if classes is None else list(classes)

    @property
    def has_scores(self) -> bool:
        return self.flavor == "sklearn" and hasattr(self.model, "predict_proba")

    def describe(self) -> dict[str, Any]:
        return {
            "uri": self.identity.uri,
            "name": self.identity.name,
            "version": self.identity.version,
            "digest": f"sha256:{self.digest}",
            "size_bytes": self.size_bytes,
            "flavor": self.flavor,
            "model_type": type(self.model).__name__,
        }

    def features(self, frame: pd.DataFrame, label: str) -> pd.DataFrame:
        """The columns the model was trained on (all but the label when it does not say)."""
        if self.input_columns is None:
            return frame.drop(columns=[label])
        missing = [c for c in self.input_columns if c not in frame.columns]
        if missing:
            raise DataError(f"dataset lacks column(s) {missing} that {self.identity.uri} needs")
        return frame[list(self.input_columns)]

    def raw_predict(self, features: pd.DataFrame, with_scores: bool) -> tuple[Any, Any]:
        """Labels (the model's own values) and, when asked and available, class probabilities."""
        try:
            labels = self.model.predict(features)
            scores = self.model.predict_proba(features) if with_scores and self.has_scores else None
        except Exception as err:  # a model that cannot score the data is unusable input
            raise DataError(
                f"{self.identity.uri} cannot predict on the dataset ({type(err).__name__}: {err})"
            ) from err
        return labels, scores

    def latency_us_per_row(self, features: pd.DataFrame, rows: int, repeats: int = 3) -> float:
        """Best-of-``repeats`` wall time of predicting a batch of ``rows``, per row."""
        batch = features.iloc[: max(1, min(rows, len(features)))]
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            self.model.predict(batch)
            best = min(best, time.perf_counter() - start)
        return best / len(batch) * 1e6


def load_model(
    settings: Settings, identity: ModelIdentity, workdir: str, trusted_types: tuple[str, ...] = ()
) -> LoadedModel:
    """Download a model's artifacts into ``workdir`` and load it (fail closed)."""
    local = download_model(settings, identity.pinned_uri, workdir)
    root = Path(local)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0
    if not (root / "MLmodel").is_file():
        raise DataError(f"{identity.uri}: not an MLflow model (no MLmodel file in {local})")
    digest = model_signing_root_digest(local)
    flavor, model, columns = _load(local, identity.uri, trusted_types)
    log.info("Loaded %s (%s, %d bytes, sha256 %s)", identity.uri, flavor, size, digest)
    return LoadedModel(identity, local, size, digest, flavor, model, columns)


def _load(
    local: str, uri: str, trusted: tuple[str, ...]
) -> tuple[str, Any, tuple[str, ...] | None]:
    from mlflow.models import Model

    try:
        meta = Model.load(local)
    except Exception as err:
        raise DataError(f"{uri}: cannot read the MLmodel file ({err})") from err
    sklearn_conf = meta.flavors.get("sklearn")
    if sklearn_conf and sklearn_conf.get("serialization_format") == "skops":
        model = _load_skops(Path(local) / sklearn_conf["pickled_model"], uri, trusted)
        names = getattr(model, "feature_names_in_", None)
        return "sklearn", model, None if names is None else tuple(map(str, names))
    return "pyfunc", _load_pyfunc(local, uri), _schema_columns(meta)


def _load_skops(path: Path, uri: str, trusted: tuple[str, ...]) -> Any:
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as err:
        raise DataError(f"{uri}: not a readable skops file ({err})") from err
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES) and t not in trusted]
    if refused:
        raise DataError(
            f"{uri}: skops file holds types outside the allowlist {refused} "
            "(add them to gates.shadow_evaluation.trusted_types only if you trust them)"
        )
    try:
        return skops.io.load(path, trusted=list(untrusted))
    except Exception as err:
        raise DataError(f"{uri}: cannot load the skops model ({err})") from err


def _load_pyfunc(local: str, uri: str) -> Any:
    import mlflow

    try:
        return mlflow.pyfunc.load_model(local)
    except Exception as err:  # MLflow refuses pickles unless explicitly allowed
        allowed = os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "")
        hint = "" if allowed.lower() == "true" else " (only skops models load by default)"
        raise ConfigError(f"{uri}: cannot load the model{hint}: {err}") from err


def _schema_columns(meta: Any) -> tuple[str, ...] | None:
    schema = meta.get_input_schema()
    if schema is None or not schema.has_input_names():
        return None
    return tuple(str(n) for n in schema.input_names())


def label_values(frame: pd.DataFrame, label: str) -> np.ndarray:
    """The label column, which must exist and have no missing values."""
    if label not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:20]))
        raise DataError(f"dataset has no label column {label!r} (columns: {shown})")
    missing = int(frame[label].isna().sum())
    if missing:
        raise DataError(f"label column {label!r} has {missing} missing value(s)")
    return frame[label].to_numpy()


def infer_task(task: str, candidate: LoadedModel, y: np.ndarray) -> str:
    """``classification`` or ``regression``: as configured, else from the model and label."""
    import numpy as np

    if task != "auto":
        return task
    if candidate.has_scores or candidate.classes is not None:
        return CLASSIFICATION
    if y.dtype.kind in "biuOUST" and len(np.unique(y)) <= 2:
        return CLASSIFICATION
    return REGRESSION if y.dtype.kind in "iuf" else CLASSIFICATION


def positive_label(configured: Any, candidate: LoadedModel, y: np.ndarray) -> Any:
    """The positive class: as configured, else the model's second class, else the larger value."""
    import numpy as np

    values = sorted(np.unique(y).tolist())
    if len(values) > 2:
        raise DataError(
            f"only binary classification is supported: the label has {len(values)} classes"
        )
    if configured is not None:
        if configured not in values:
            raise DataError(f"positive_label {configured!r} is not a label value ({values})")
        return configured
    classes = candidate.classes
    if classes is not None and len(classes) == 2:
        return classes[1]
    return values[-1]


def predictions(
    model: LoadedModel, frame: pd.DataFrame, label: str, task: str, positive: Any
) -> Predictions:
    """0/1 labels and positive-class scores (classification) or predicted values."""
    import numpy as np

    features = model.features(frame, label)
    raw, proba = model.raw_predict(features, with_scores=task == CLASSIFICATION)
    values = np.asarray(raw).ravel()
    uri = model.identity.uri
    if len(values) != len(frame):
        raise DataError(f"{uri} returned {len(values)} predictions for {len(frame)} rows")
    if task == REGRESSION:
        numeric = values.astype(float)
        return Predictions(numeric, numeric)
    labels = (values == positive).astype("int64")
    if proba is None:
        return Predictions(labels, labels.astype(float))
    classes = model.classes or []
    if positive not in classes:
        raise DataError(f"{uri} has classes {classes}, not the positive label {positive!r}")
    return Predictions(labels, np.asarray(proba)[:, classes.index(positive)].astype(float))


def model_uri(value: str) -> str:
    """A model URI as given, or a local path made absolute (``file://``)."""
    if "://" in value or value.startswith(("models:/", "runs:/")):
        return value
    return Path(value).expanduser().resolve().as_uri()


def load_pair(
    settings: Settings,
    candidate_uri: str,
    champion_uri: str | None,
    workdir: str,
    trusted_types: tuple[str, ...] = (),
    first_model_ok: bool = False,
) -> tuple[LoadedModel, LoadedModel | None]:
    """Load the candidate and the champion (None: no champion URI, or its alias is not set)."""
    identity = resolve_identity(settings, model_uri(candidate_uri))
    if identity is None:
        raise NotFoundError(f"candidate {candidate_uri}: the registry alias is not set")
    candidate = load_model(settings, identity, str(Path(workdir, "candidate")), trusted_types)
    if not champion_uri:
        return candidate, None
    champion_identity = resolve_identity(settings, model_uri(champion_uri), first_model_ok)
    if champion_identity is None:
        log.info("No champion: %s is not set", champion_uri)
        return candidate, None
    champion = load_model(
        settings, champion_identity, str(Path(workdir, "champion")), trusted_types
    )
    return candidate, champion
