"""Build the service ``mlsecops serve`` runs: verified models, profile, log, token; run it.

Everything that can refuse happens here, before the port opens: a champion or fallback whose
signed promotion does not verify, a shadow without a passing scan of its exact digest, a
missing training profile (when the policy requires one), a logged column that the policy
treats as PII, an empty token variable. Each refusal is an :class:`MLSecOpsError` (one line,
exit 2 from the CLI).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from mlsecops_provider.core.errors import ConfigError, MLSecOpsError
from mlsecops_provider.core.policy import Policy
from mlsecops_provider.core.serving.config import ServingConfig
from mlsecops_provider.core.serving.loading import CHAMPION, Loader, ServedModel
from mlsecops_provider.core.serving.prediction_log import PredictionLog
from mlsecops_provider.core.serving.profile import TrainingProfile, champion_profile
from mlsecops_provider.core.serving.service import ServingService
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.core.storage import S3ClientFactory, normalise_uri, safe_segment

log = logging.getLogger(__name__)
SECTION = "serving"
PII_NAMES = re.compile(
    r"name|e_?mail|phone|ssn|social|address|street|card|iban|account|ip_?addr|birth|passport|"
    r"licen[cs]e|notes?$|comment|customer_id|user_id",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ServeOptions:
    registered_model: str
    public_key_pem: bytes
    champion_alias: str = "champion"
    shadow_alias: str | None = "shadow"
    fallback_alias: str = "previous-champion"
    log_uri: str | None = None
    token_env: str | None = None
    tracking_uri: str | None = None

    def __post_init__(self) -> None:
        if not self.registered_model:
            raise ValueError("registered_model is empty")


def default_log_uri(settings: Settings, name: str) -> str:
    return f"{settings.evidence_uri}/serving/{safe_segment(name)}/predictions"


def read_token(env_var: str | None) -> str | None:
    if not env_var:
        return None
    token = os.environ.get(env_var, "")
    if not token.strip():
        raise ConfigError(f"--token-env {env_var}: the variable is not set or empty")
    return token.strip()


def check_log_columns(policy: Policy, config: ServingConfig) -> None:
    """A logged input column must not be one the data-validation screens treat as PII."""
    screens = policy.section("data_validation").get("screens", {}) or {}
    pii = set(screens.get("exclude_columns", []) or [])
    refused = sorted(c for c in config.log_columns if c in pii or PII_NAMES.search(c))
    if refused:
        raise ConfigError(
            f"gates.serving.log_columns: {refused} are identifiers or PII and are never logged"
        )


def build_service(
    options: ServeOptions, policy: Policy, s3: S3ClientFactory | None = None
) -> ServingService:
    from mlsecops_provider.core.promotion.record import consumer_settings
    from mlsecops_provider.core.scan.gate import ModelScanConfig

    config = policy.config(SECTION, ServingConfig)
    check_log_columns(policy, config)
    settings = consumer_settings(options.tracking_uri)
    loader = Loader(
        settings, options.public_key_pem, policy.config("model_scan", ModelScanConfig), s3
    )
    name = options.registered_model
    champion = loader.verified(name, options.champion_alias, CHAMPION)
    fallback = loader.fallback(champion, options.fallback_alias)
    shadow = loader.shadow(name, options.shadow_alias) if options.shadow_alias else None
    profile = _profile(settings, options, config, champion.version, champion.columns, s3)
    log_uri = normalise_uri(options.log_uri) if options.log_uri else default_log_uri(settings, name)
    prediction_log = PredictionLog(
        log_uri,
        batch_rows=config.log_batch_rows,
        flush_seconds=config.log_flush_seconds,
        input_columns=config.log_columns,
        s3=s3,
    )
    log.info(
        "Serving %s v%s (fallback %s, shadow %s), log %s",
        name,
        champion.version,
        fallback.version if fallback else "none",
        shadow.version if shadow else "none",
        log_uri,
    )
    return ServingService(
        champion,
        fallback=fallback,
        shadow=shadow,
        profile=profile,
        config=config,
        prediction_log=prediction_log,
        shadow_runner=_isolated(shadow, config, loader),
    )


def _isolated(shadow: ServedModel | None, config: ServingConfig, loader: Loader) -> Any:
    """The shadow's own process (``shadow_process``), loaded from its verified bytes."""
    if shadow is None or not config.shadow_process or shadow.files is None:
        return None
    from mlsecops_provider.core.serving.isolated import ShadowProcess

    where = f"shadow {shadow.name} v{shadow.version}"
    return ShadowProcess(shadow.files, where, loader.scan_config)


def _profile(
    settings: Settings,
    options: ServeOptions,
    config: ServingConfig,
    version: str,
    columns: tuple[str, ...] | None,
    s3: S3ClientFactory | None,
) -> TrainingProfile | None:
    try:
        return champion_profile(
            settings,
            options.registered_model,
            options.champion_alias,
            version,
            columns,
            max_categories=config.max_categories,
            margin=config.profile_margin,
            s3=s3,
        )
    except MLSecOpsError as err:
        if config.require_profile:
            raise ConfigError(f"no training profile for the champion: {err}") from err
        log.warning("serving without a training profile: %s", err)
        return None


def run(app: Any, host: str, port: int) -> None:
    """Serve with uvicorn until interrupted (start-up objects out of the garbage collector's
    reach first: see :func:`freeze_startup_objects`)."""
    import uvicorn

    freeze_startup_objects()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def freeze_startup_objects() -> None:
    """Move every object alive now (the imported libraries, the loaded models: ~250k objects)
    to the collector's permanent generation. A full collection over them takes ~0.17 s here;
    requests that keep objects alive a little longer (queued for the shadow, buffered for the
    prediction log) make full collections frequent, and each one stalls every answer in
    flight. Frozen, a full collection walks only what the requests left."""
    import gc

    gc.collect()
    gc.freeze()
    log.info("serving: %d start-up objects frozen out of garbage collection", gc.get_freeze_count())
