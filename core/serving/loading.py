"""Load the served models only through bytes that were verified.

* champion and fallback: their signed promotion record must verify with the given key
  (:func:`~mlsecops_provider.core.promotion.verify.verify_promotion`); the fallback is the
  version the champion's *signed* record names as the previous champion, and the fallback
  alias must point at it;
* shadow: its MLflow run (or version) must carry a passing ``model_scan`` report, read by
  its digest, whose subject is the exact root digest of the shadow's files.

The model's files are read into memory once; their model-signing root digest must equal the
digest that was verified, and the model is then loaded from those bytes with
:func:`~mlsecops_provider.core.scan.safe_load.safe_loads` (scan + allowlisted skops loader)
and wrapped in MLflow's own ``PyFuncModel``, so schema enforcement and predictions are
MLflow's. Only sklearn models saved as skops load; anything else refuses to start.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import (
    ConfigError,
    DataError,
    LineageError,
    SignatureError,
    UnsafeModelError,
)
from mlsecops_provider.core.evidence import GateResult, Verdict
from mlsecops_provider.core.manifest import DEFAULT_IGNORE, Manifest
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import S3ClientFactory, read_verified, sha256_bytes, storage_for

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlsecops_provider.core.scan.gate import ModelScanConfig

log = logging.getLogger(__name__)
SCAN_TAG = "mlsecops.gate.model_scan"
CHAMPION, FALLBACK, SHADOW = "champion", "fallback", "shadow"


@dataclass
class ServedModel:
    """One loaded model: which version, the digest of the bytes it was loaded from."""

    role: str
    name: str
    version: str
    alias: str
    digest: str
    pyfunc: Any = field(repr=False)
    files: dict[str, bytes] | None = field(default=None, repr=False)  # the verified bytes

    @property
    def input_schema(self) -> Any:
        return self.pyfunc.metadata.get_input_schema()

    @property
    def columns(self) -> tuple[str, ...] | None:
        schema = self.input_schema
        if schema is not None and schema.has_input_names():
            return tuple(str(n) for n in schema.input_names())
        names = getattr(self.raw_model, "feature_names_in_", None)
        return None if names is None else tuple(map(str, names))

    @property
    def raw_model(self) -> Any:
        impl = getattr(self.pyfunc, "_model_impl", None)
        return getattr(impl, "sklearn_model", impl)

    def predict(self, frame: Any) -> Any:
        """MLflow's ``PyFuncModel.predict``: schema enforcement, then the model."""
        return self.pyfunc.predict(frame)

    def predict_enforced(self, frame: Any) -> Any:
        """The model on a frame MLflow's schema enforcement already returned (no second pass)."""
        impl = getattr(self.pyfunc, "_model_impl", None)
        if impl is None or self.input_schema is None:
            return self.pyfunc.predict(frame)
        return impl.predict(frame)

    def describe(self) -> dict[str, str]:
        return {
            "role": self.role,
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "digest": f"sha256:{self.digest}",
        }


@dataclass
class Loader:
    """Where models come from and how they are checked."""

    settings: Settings
    public_key_pem: bytes
    scan_config: ModelScanConfig | None = None
    s3: S3ClientFactory | None = None
    audit_log_uri: str | None = None

    @property
    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        return MlflowClient(self.settings.tracking_uri, self.settings.registry_uri)

    def verified(self, name: str, alias: str, role: str) -> ServedModel:
        """Verify ``name@alias``'s signed promotion record, then load the verified bytes."""
        from mlsecops_provider.core.promotion.verify import verify_promotion

        check = verify_promotion(
            name,
            alias,
            self.public_key_pem,
            self.settings.tracking_uri,
            registry_uri=self.settings.registry_uri,
            s3_client_factory=self.s3,
            audit_log_uri=self.audit_log_uri,
        )
        if not check.verified or not check.version or not check.model_sha256:
            raise SignatureError(
                f"{role} {name}@{alias} does not verify ({check.code}): {check.reason}"
            )
        return self._load(role, name, check.version, alias, check.model_sha256, dict(check.files))

    def previous_champion(self, champion: ServedModel) -> str | None:
        """The previous champion the champion's signed record names (None: there was none)."""
        from mlsecops_provider.core.promotion.record import TAG_EVIDENCE_SHA256, TAG_EVIDENCE_URI
        from mlsecops_provider.core.promotion.signing import PublicKey, dsse_verify

        tags = dict(self.client.get_model_version(champion.name, champion.version).tags or {})
        uri, digest = tags.get(TAG_EVIDENCE_URI), tags.get(TAG_EVIDENCE_SHA256)
        if not uri or not digest:
            raise SignatureError(f"champion v{champion.version} has no signed promotion record")
        key = PublicKey.from_pem(self.public_key_pem)
        envelope = read_verified(storage_for(uri, self.s3), uri, digest)
        payload = json.loads(dsse_verify(envelope, {key.key_id: key}).payload)
        previous = payload.get("predicate", {}).get("previousChampion")
        return None if previous in (None, "", "none") else str(previous)

    def fallback(self, champion: ServedModel, alias: str) -> ServedModel | None:
        """The verified previous champion, or None when the champion was the first."""
        from mlsecops_provider.core.tracking.registry import alias_version

        named = self.previous_champion(champion)
        current = alias_version(self.client, champion.name, alias)
        if named is None and current is None:
            log.warning(
                "%s v%s has no previous champion: no fallback", champion.name, champion.version
            )
            return None
        if named != current:
            raise SignatureError(
                f"fallback {champion.name}@{alias} points at {_v(current)}, but the champion's "
                f"signed record names {_v(named)} as the previous champion"
            )
        return self.verified(champion.name, alias, FALLBACK)

    def shadow(self, name: str, alias: str) -> ServedModel | None:
        """The shadow, only with a passing model-scan report for its exact digest."""
        from mlsecops_provider.core.tracking.registry import alias_version

        version = alias_version(self.client, name, alias)
        if version is None:
            log.info("%s@%s is not set: no shadow", name, alias)
            return None
        files, digest = self.read_files(name, version)
        self.check_scan(name, version, digest)
        pyfunc = self.pyfunc(files, f"{name} v{version}")
        return ServedModel(SHADOW, name, version, alias, digest, pyfunc, files)

    def check_scan(self, name: str, version: str, digest: str) -> None:
        """Raise unless a passing ``model_scan`` report (read by digest) names ``digest``."""
        model_version = self.client.get_model_version(name, version)
        tags = dict(model_version.tags or {})
        if not tags.get(f"{SCAN_TAG}.evidence_uri") and model_version.run_id:
            tags = {**dict(self.client.get_run(model_version.run_id).data.tags), **tags}
        uri, sha = tags.get(f"{SCAN_TAG}.evidence_uri"), tags.get(f"{SCAN_TAG}.evidence_sha256")
        where = f"shadow {name} v{version}"
        if not uri or not sha:
            raise UnsafeModelError(f"{where} carries no model-scan result")
        try:
            payload = json.loads(read_verified(storage_for(uri, self.s3), uri, sha))
            result = GateResult.from_dict(payload["result"])
        except (ValueError, KeyError, TypeError) as err:
            raise UnsafeModelError(
                f"{where}: model-scan report {uri} is unreadable ({err})"
            ) from err
        if result.gate != "model_scan" or result.verdict is not Verdict.PASS:
            raise UnsafeModelError(
                f"{where}: model scan verdict is {result.verdict.value}, not pass"
            )
        scanned = result.subjects.get("model")
        if scanned != digest:
            raise UnsafeModelError(
                f"{where}: the scan is of sha256:{scanned}, the shadow is sha256:{digest}"
            )

    def read_files(self, name: str, version: str) -> tuple[dict[str, bytes], str]:
        """Download a version once and read its files into memory; their root digest."""
        from mlsecops_provider.core.tracking.registry import download_model

        try:
            source = str(self.client.get_model_version(name, version).source)
        except Exception as err:
            raise LineageError(f"cannot read {name} v{version} from the registry: {err}") from err
        with tempfile.TemporaryDirectory(prefix="mlsecops-serve-") as tmp:
            root = Path(download_model(self.settings, source, str(Path(tmp) / "model")))
            files = {}
            for path in sorted(root.rglob("*")):
                rel = path.relative_to(root).as_posix()
                if path.is_symlink():
                    raise DataError(f"{name} v{version}: {rel} is a symlink; refused")
                if path.is_file() and rel.split("/", 1)[0] not in DEFAULT_IGNORE:
                    files[rel] = path.read_bytes()
        manifest = Manifest("directory", root.name, {k: sha256_bytes(v) for k, v in files.items()})
        return files, manifest.root_digest

    def _load(
        self,
        role: str,
        name: str,
        version: str,
        alias: str,
        signed: str,
        verified_files: dict[str, str],
    ) -> ServedModel:
        """Load ``files`` only if they are the verified ones: the root digest does not bind
        file names, so every (name, digest) pair must be what verification hashed."""
        files, digest = self.read_files(name, version)
        if digest != signed:
            raise SignatureError(
                f"{role} {name} v{version}: bytes read hash to sha256:{digest}, "
                f"the verified record says sha256:{signed}"
            )
        read = {rel: sha256_bytes(data) for rel, data in files.items()}
        if not verified_files or read != verified_files:
            changed = sorted(set(read.items()) ^ set(verified_files.items()))
            names = ", ".join(sorted({rel for rel, _ in changed})[:5]) or "none verified"
            raise SignatureError(
                f"{role} {name} v{version}: the files read are not the verified files ({names})"
            )
        model = ServedModel(
            role, name, version, alias, digest, self.pyfunc(files, f"{name} v{version}")
        )
        log.info("Loaded %s %s v%s (sha256 %s)", role, name, version, digest)
        return model

    def pyfunc(self, files: dict[str, bytes], where: str) -> Any:
        return pyfunc_from_files(files, where, self.scan_config)


def pyfunc_from_files(
    files: dict[str, bytes], where: str, scan_config: ModelScanConfig | None = None
) -> Any:
    """MLflow's ``PyFuncModel`` over an sklearn model loaded from in-memory skops bytes."""
    import yaml
    from mlflow.models import Model
    from mlflow.pyfunc import PyFuncModel
    from mlflow.sklearn import _SklearnModelWrapper

    from mlsecops_provider.core.scan.safe_load import safe_loads

    if "MLmodel" not in files:
        raise DataError(f"{where}: not an MLflow model (no MLmodel file)")
    try:
        meta = Model.from_dict(yaml.safe_load(files["MLmodel"]))
    except Exception as err:
        raise DataError(f"{where}: cannot read the MLmodel file ({err})") from err
    conf = meta.flavors.get("sklearn") or {}
    model_file = str(conf.get("pickled_model", ""))
    if conf.get("serialization_format") != "skops" or model_file not in files:
        raise ConfigError(f"{where}: only sklearn models saved as skops are served")
    estimator = safe_loads(files[model_file], Path(model_file).name, scan_config)
    return PyFuncModel(model_meta=meta, model_impl=_SklearnModelWrapper(estimator))


def _v(version: str | None) -> str:
    return f"v{version}" if version else "unset"
