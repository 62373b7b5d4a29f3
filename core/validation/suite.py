"""Expectation suites of the data validation gate: GX 1.x suite JSON, checked up front.

The suite is GX suite JSON (``ExpectationSuite.to_json_dict()``: ``name`` and
``expectations`` of ``{type, kwargs, meta, severity}``). Every expectation is built with GX
when the suite is loaded, so a malformed suite is a :class:`ConfigError` naming the
expectation's index and type. ``severity`` (or ``meta.severity``) is ``critical``,
``warning`` or ``info``. :func:`run_suite` validates a frame in an ephemeral GX context
with analytics and progress bars off.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import ConfigError, DataError
from mlsecops_provider.core.storage import normalise_uri, read_verified, storage_for

if TYPE_CHECKING:
    import pandas as pd

SEVERITIES = ("critical", "warning", "info")
EXPECTATION_KEYS = {"type", "kwargs", "meta", "severity", "id", "notes", "description"}
INDEX_KEY = "mlsecops_index"  # added to each expectation's meta to map results back


@dataclass(frozen=True)
class Suite:
    """A checked expectation suite: name, digest and one GX configuration per expectation."""

    name: str
    sha256: str
    configurations: tuple[Any, ...] = field(repr=False, compare=False)

    def build(self) -> Any:
        """A fresh GX ``ExpectationSuite`` (GX binds expectations to one suite)."""
        gx = import_gx()
        built = [c.to_domain_obj() for c in self.configurations]
        return gx.ExpectationSuite(name=self.name, expectations=built)


def load_suite(source: str | Mapping[str, Any]) -> Suite:
    """Load and check a suite from a path/URI or from an already parsed JSON mapping."""
    if isinstance(source, Mapping):
        return parse_suite(source, "suite")
    uri = normalise_uri(source)
    data = read_verified(storage_for(uri), uri, None)
    try:
        spec = json.loads(data)
    except ValueError as err:
        raise ConfigError(f"{source}: suite is not valid JSON ({err})") from err
    return parse_suite(spec, str(source))


def parse_suite(spec: Any, where: str = "suite") -> Suite:
    """Check every expectation with GX; the first bad one is named by index and type."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: a suite must be a JSON object")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: suite 'name' must be a non-empty string")
    expectations = spec.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise ConfigError(f"{where}: 'expectations' must be a non-empty list")
    configs = tuple(_configuration(item, i, where) for i, item in enumerate(expectations))
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return Suite(name, hashlib.sha256(canonical.encode()).hexdigest(), configs)


def _configuration(item: Any, index: int, where: str) -> Any:
    import_gx()
    from great_expectations.exceptions import ExpectationNotFoundError, GreatExpectationsError
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )
    from great_expectations.expectations.metadata_types import FailureSeverity

    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: expectations[{index}]: must be a JSON object")
    label = f"{where}: expectations[{index}] ({item.get('type', '<no type>')})"
    unknown = set(item) - EXPECTATION_KEYS
    if unknown:
        raise ConfigError(f"{label}: unknown field(s) {sorted(unknown)}")
    if not isinstance(item.get("type"), str) or not isinstance(item.get("kwargs", {}), Mapping):
        raise ConfigError(f"{label}: needs a string 'type' and an object 'kwargs'")
    meta = item.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise ConfigError(f"{label}: 'meta' must be an object")
    try:
        config = ExpectationConfiguration(
            type=item["type"],
            kwargs=dict(item.get("kwargs", {})),
            meta={**meta, INDEX_KEY: index},
            severity=FailureSeverity(_severity(item, meta, label)),
            notes=item.get("notes"),
            description=item.get("description"),
        )
        config.to_domain_obj()
    except ExpectationNotFoundError as err:
        raise ConfigError(f"{label}: unknown expectation type") from err
    except (GreatExpectationsError, ValueError, TypeError) as err:
        raise ConfigError(f"{label}: {one_line(err)}") from err
    return config


def _severity(item: Mapping[str, Any], meta: Mapping[str, Any], label: str) -> str:
    top, from_meta = item.get("severity"), meta.get("severity")
    if top is not None and from_meta is not None and top != from_meta:
        raise ConfigError(f"{label}: severity {top!r} conflicts with meta.severity {from_meta!r}")
    severity = top or from_meta or "critical"
    if severity not in SEVERITIES:
        raise ConfigError(f"{label}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    return str(severity)


def one_line(err: Exception, limit: int = 300) -> str:
    """An exception as one line (pydantic errors as ``field: message`` pairs)."""
    details = getattr(err, "errors", None)  # pydantic: "field: message" pairs, not a dump
    if callable(details):
        text = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in details())
    else:
        text = getattr(err, "message", None) or str(err)
    return short(str(text), limit)


def import_gx() -> Any:
    """Import GX with usage statistics off (the variable must be set before the first import)."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx

    return gx


def gx_context() -> Any:
    """An ephemeral GX context with analytics and progress bars off (nothing leaves the host)."""
    gx = import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def run_suite(frame: pd.DataFrame, suite: Suite) -> dict[str, Any]:
    """Validate ``frame`` with GX (one ValidationDefinition run); return the result as JSON."""
    gx = import_gx()
    context = gx_context()
    asset = context.data_sources.add_pandas("mlsecops").add_dataframe_asset("batch")
    gx_suite = suite.build()
    if len(gx_suite.expectations) != len(suite.configurations):
        raise DataError(f"suite {suite.name!r}: GX dropped expectations while building it")
    definition = gx.ValidationDefinition(
        name="mlsecops",
        data=asset.add_batch_definition_whole_dataframe("whole"),
        suite=context.suites.add(gx_suite),
    )
    try:  # run() reads the batch once; batch.validate() would read (and fingerprint) it twice
        result = definition.run(batch_parameters={"dataframe": frame}, result_format="BASIC")
    except Exception as err:  # GX raises many types; a suite that cannot run fails closed
        raise DataError(f"suite {suite.name!r}: GX could not validate ({one_line(err)})") from err
    return dict(result.to_json_dict())


def short(text: str, limit: int = 160) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
