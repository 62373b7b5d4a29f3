"""The PII de-identification gate: detect per column, transform, scan every output cell.

* **Headers** (:func:`.text_columns.scan_headers`): a column name that holds PII is
  renamed ``redacted_<type>_<position>`` in the output and in every report.
* **Plan** (:func:`.engine.plan_columns`): a random sample (``sample_size``; a fresh seed
  per run unless the policy pins ``seed``; the seed is in the report) of each column's
  values decides its strategy. Text columns averaging ``free_text_min_tokens`` words are
  *free text*; otherwise Presidio plus the pattern pass analyse the sample and the column
  is PII of type T when ``column_hit_share`` of it hits T (``HINT_SHARE`` when the column
  name says T, e.g. ``ssn``); a text column with fewer hits is handled value by value as
  free text. Numeric columns are judged by their digits (Luhn card numbers, SSNs, phone
  numbers). Bool and date columns and ``exclude_columns`` (the label) are not scanned.
* **Transform**: PII columns whole (see :mod:`.transform`); free text value by value (see
  :mod:`.text`: pattern pass, name rules with the table's own names as a deny list, spaCy
  NER, a check of every final text). Every other column is the input's Series.
* **Verify** (:mod:`.verify`): every value of every scanned output column, not a sample;
  residual PII above ``max_residual_rate`` (default 0: any) fails the gate, and callers
  publish nothing.

Reports carry counts, entity types, column names and row numbers only, never a value.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import ConfigError, DataError, MLSecOpsError, PolicyError
from mlsecops_provider.core.evidence import GateResult, Verdict
from mlsecops_provider.core.pii.engine import DEFAULT_NLP_MODEL, PIIEngine
from mlsecops_provider.core.pii.names import NameRules
from mlsecops_provider.core.pii.plan import ColumnPlan, plan_columns
from mlsecops_provider.core.pii.text import TextScanner, english_words
from mlsecops_provider.core.pii.text_columns import free_text, scan_headers
from mlsecops_provider.core.pii.transform import OPERATORS, Transformer
from mlsecops_provider.core.pii.verify import verify_output
from mlsecops_provider.core.policy import Policy

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

GATE = "pii_deidentification"
DEFAULT_ENTITIES = (
    "PERSON",
    "LOCATION",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
    "US_ITIN",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
)
_ENTITY_RE = re.compile(r"[A-Z][A-Z0-9_]*")


@dataclass(frozen=True)
class PIIConfig:
    """Policy section ``gates.pii_deidentification`` (see the README for every field)."""

    nlp_model: str = DEFAULT_NLP_MODEL
    entities: tuple[str, ...] = DEFAULT_ENTITIES
    operators: dict[str, str] = field(default_factory=dict)
    default_operator: str = "replace"
    min_score: float = 0.4
    phone_regions: tuple[str, ...] = ()
    sample_size: int = 100
    column_hit_share: float = 0.3
    free_text_min_tokens: float = 6.0
    max_residual_rate: float = 0.0
    mask_char: str = "*"
    mask_keep_last: int = 0
    key_env: str | None = None
    key_conn_id: str | None = None
    exclude_columns: tuple[str, ...] = ()
    link_row_values: bool = True
    batch_size: int = 256
    nlp_processes: int = 1
    chunk_rows: int = 50_000  # rows per chunk when streaming (see .stream)
    seed: int | None = None  # None: a fresh random sampling seed per run (recorded)

    def __post_init__(self) -> None:
        # an entity type given an operator is detected too
        object.__setattr__(
            self, "entities", tuple(dict.fromkeys((*self.entities, *self.operators)))
        )
        if not self.entities:
            raise ValueError("entities must name at least one entity type")
        for entity in self.entities:
            if not isinstance(entity, str) or not _ENTITY_RE.fullmatch(entity):
                raise ValueError(f"entity type {entity!r} must be UPPER_SNAKE_CASE")
        named = {f"operators.{e}": op for e, op in self.operators.items()}
        for where, name in {**named, "default_operator": self.default_operator}.items():
            if name not in OPERATORS:
                raise ValueError(f"{where}: unknown operator {name!r} (one of {OPERATORS})")
        for name in ("min_score", "column_hit_share", "max_residual_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if min(self.sample_size, self.batch_size, self.nlp_processes, self.chunk_rows) < 1:
            raise ValueError("sample_size, batch_size, nlp_processes, chunk_rows must be >= 1")
        if len(self.mask_char) != 1 or self.mask_char.isalnum():
            raise ValueError("mask_char must be one character, not a letter or digit")
        if self.mask_keep_last < 0:
            raise ValueError("mask_keep_last must be >= 0")

    @classmethod
    def from_policy(cls, policy: Policy) -> PIIConfig:
        return policy.config(GATE, cls)

    @property
    def needs_key(self) -> bool:
        return "pseudonymize" in (self.default_operator, *self.operators.values())


def resolve_key(
    config: PIIConfig, key_env: str | None = None, env: Mapping[str, str] | None = None
) -> bytes | None:
    """The pseudonymisation key from the environment variable ``key_env`` (or the policy's)."""
    if not config.needs_key:
        return None
    name = key_env or config.key_env
    if not name:
        raise ConfigError(
            f"gates.{GATE}: pseudonymize needs a key; name its source in key_env or key_conn_id"
        )
    value = (os.environ if env is None else env).get(name, "")
    if not value:
        raise ConfigError(f"environment variable {name} (pseudonymisation key) is not set or empty")
    return value.encode()


@dataclass(frozen=True)
class Outcome:
    """The de-identified frame, the gate's result and its full report."""

    frame: pd.DataFrame = field(repr=False)
    result: GateResult
    details: dict[str, Any]
    # output column -> input column (differs where a header held PII); never in reports
    sources: dict[str, str] = field(default_factory=dict, repr=False)
    transformed: frozenset[str] = frozenset()  # output columns whose values were changed


@dataclass(frozen=True)
class Deidentifier:
    """A checked configuration, its transformer and a loaded engine (build with prepare)."""

    config: PIIConfig
    transformer: Transformer
    engine: PIIEngine

    @classmethod
    def prepare(cls, config: PIIConfig, key: bytes | None = None) -> Deidentifier:
        """Every check that needs no data: key, operators, model, entity types."""
        from mlsecops_provider.core.pii.engine import load_engine

        transformer = Transformer(
            operators=dict(config.operators),
            default_operator=config.default_operator,
            key=key,
            mask_char=config.mask_char,
            mask_keep_last=config.mask_keep_last,
        )
        engine = load_engine(config.nlp_model, config.phone_regions)
        for name, entities in (("operators", config.operators), ("entities", config.entities)):
            unknown = sorted(set(entities) - engine.supported_entities)
            if unknown:
                raise PolicyError(
                    f"gates.{GATE}.{name}: unknown entity type(s) {unknown} "
                    f"(supported: {sorted(engine.supported_entities)})"
                )
        return cls(config, transformer, engine)

    def run(self, frame: pd.DataFrame, subjects: Mapping[str, str] | None = None) -> Outcome:
        """De-identify ``frame`` (never changed) and verify the output."""
        duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        if duplicated:
            raise DataError(f"{len(duplicated)} duplicate column name(s): cannot de-identify")
        result = GateResult(gate=GATE, verdict=Verdict.ERROR, subjects=dict(subjects or {}))
        seed = self.config.seed if self.config.seed is not None else secrets.randbits(32)
        clock = [time.perf_counter()]
        try:
            scanner = self._scanner()
            sources, headers = scan_headers(frame, scanner)
            frame = frame.set_axis(list(sources), axis=1)
            plans = plan_columns(frame, self.config, self.engine, seed)
            clock.append(time.perf_counter())
            output, counts, text_residual = self._transform(frame, plans, scanner)
            clock.append(time.perf_counter())
            residual = verify_output(output, plans, self.config, scanner, text_residual)
            clock.append(time.perf_counter())
        except MLSecOpsError:
            raise
        except Exception as err:  # Presidio/spaCy/pandas: undecided means failed (fail closed)
            raise DataError(f"PII analysis failed ({type(err).__name__})") from err
        timings = {
            f"seconds_{step}": round(clock[i + 1] - clock[i], 3)
            for i, step in enumerate(("detect", "transform", "verify"))
        }
        sampling = {"seed": seed, "fresh": self.config.seed is None}
        outcome = self._outcome(
            result, frame, output, plans, counts, residual, timings, headers, sampling
        )
        outcome.result.metrics["ner_texts"] = scanner.ner_calls  # texts spaCy read
        transformed = {p.column for p in plans if p.kind in ("pii", "free_text")}
        kept = {c: sources[c] for c in map(str, output.columns)}
        return replace(outcome, sources=kept, transformed=frozenset(transformed))

    def _scanner(self) -> TextScanner:
        return TextScanner(
            nlp=self.engine.nlp,
            entities=frozenset(self.config.entities),
            names=NameRules(dictionary=english_words(self.engine.nlp)),
            batch_size=self.config.batch_size,
            n_process=self.config.nlp_processes,
        )

    def _transform(
        self, frame: pd.DataFrame, plans: Sequence[ColumnPlan], scanner: TextScanner
    ) -> tuple[pd.DataFrame, dict[str, Counter[str]], dict[str, list[list[str]]]]:
        output = frame.copy(deep=False)
        counts: dict[str, Counter[str]] = {}
        residual: dict[str, list[list[str]]] = {}
        pii = [p for p in plans if p.kind == "pii" and p.entity]
        people = [frame[p.column] for p in pii if p.entity == "PERSON"]
        if self.config.link_row_values:
            for series in people:  # the table-wide deny list
                scanner.names.add(str(v) for v in series.dropna().unique())
        links = (
            [(frame[p.column], str(p.entity)) for p in pii] if self.config.link_row_values else []
        )
        for plan in plans:
            series = frame[plan.column]
            if plan.kind == "pii" and plan.entity:
                new = self.transformer.column(series, plan.entity)
                counts[plan.column] = Counter({plan.entity: int(series.notna().sum())})
                if new is None:
                    output = output.drop(columns=[plan.column])
                else:
                    output[plan.column] = new
            elif plan.kind == "free_text":
                new, counts[plan.column], residual[plan.column] = free_text(
                    series, links, scanner, self.transformer
                )
                output[plan.column] = new
        return output, counts, residual

    def _outcome(
        self,
        result: GateResult,
        source: pd.DataFrame,
        output: pd.DataFrame,
        plans: Sequence[ColumnPlan],
        counts: Mapping[str, Counter[str]],
        residual: Mapping[str, dict[str, Any]],
        timings: Mapping[str, float],
        headers: list[dict[str, Any]],
        sampling: dict[str, Any],
        rows: int | None = None,
    ) -> Outcome:
        rows = len(source) if rows is None else rows  # streaming: source is the first chunk
        report = _report(self.config, source, rows, output, plans, counts, residual, timings)
        report.details["sampling"] = sampling
        report.details["headers"] = headers
        report.metrics["sampling_seed"] = sampling["seed"]
        report.metrics["pii_headers"] = len(headers)
        report.findings.extend({"kind": "header", "severity": "warn", **h} for h in headers)
        if report.max_rate > self.config.max_residual_rate:
            verdict = Verdict.FAIL
        else:
            verdict = Verdict.WARN if report.max_rate > 0 or headers else Verdict.PASS
        done = result.finished(
            verdict=verdict,
            metrics=report.metrics,
            findings=report.findings,
            tool_versions=self.engine.tool_versions(),
            message=report.message,
        )
        return Outcome(output, done, report.details)


def config_summary(config: PIIConfig) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}


@dataclass(frozen=True)
class _Report:
    metrics: dict[str, Any]
    findings: list[dict[str, Any]]
    details: dict[str, Any]
    message: str
    max_rate: float


def _report(
    config: PIIConfig,
    source: pd.DataFrame,
    rows: int,
    output: pd.DataFrame,
    plans: Sequence[ColumnPlan],
    counts: Mapping[str, Counter[str]],
    residual: Mapping[str, dict[str, Any]],
    timings: Mapping[str, float],
) -> _Report:
    """Metrics, findings and the full report: counts, types, strategies, never values."""
    kinds = Counter(p.kind for p in plans)
    max_rate = max((r["rate"] for r in residual.values()), default=0.0)
    seconds = sum(timings.values())
    columns, strategies = _column_details(config, output, plans, counts, residual)
    findings = [
        {
            "kind": "residual",
            "column": column,
            "severity": "fail" if r["rate"] > config.max_residual_rate else "warn",
            **r,
        }
        for column, r in sorted(residual.items(), key=lambda item: -item[1]["rate"])
        if r["rows_with_pii"]
    ]
    metrics = {
        "rows": rows,
        "columns": int(source.shape[1]),
        **{
            f"{kind}_columns": kinds[kind]
            for kind in ("pii", "free_text", "clean", "excluded", "not_scanned")
        },
        "dropped_columns": sum(1 for c in columns if c["output"] == "dropped"),
        "entities_transformed": sum(sum(c.values()) for c in counts.values()),
        "residual_rate_max": max_rate,
        "max_residual_rate": config.max_residual_rate,
        "residual_rows": sum(r["rows_with_pii"] for r in residual.values()),
        "verify_rows_scanned": sum(r["rows_scanned"] for r in residual.values()),
        **timings,
        "rows_per_second": round(rows / seconds, 1) if seconds else 0.0,
    }
    details = {
        "policy": config_summary(config),
        "columns": columns,
        "strategies": strategies,
        "entity_counts": {c: dict(n) for c, n in counts.items()},
        "residual": {
            "threshold": config.max_residual_rate,
            "max_rate": max_rate,
            "columns": dict(residual),
        },
    }
    message = (
        f"{kinds['pii']} PII column(s), {kinds['free_text']} free-text column(s) "
        f"de-identified; residual PII {max_rate:.2%} of rows at most "
        f"(threshold {config.max_residual_rate:.2%})"
    )
    return _Report(metrics, findings, details, message, max_rate)


def _column_details(
    config: PIIConfig,
    output: pd.DataFrame,
    plans: Sequence[ColumnPlan],
    counts: Mapping[str, Counter[str]],
    residual: Mapping[str, dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per column: the decision, what happened to it, counts and residual; the strategies."""
    strategies: dict[str, Any] = {}
    columns = []
    for plan in plans:
        found = dict(counts.get(plan.column, {}))
        if plan.kind == "pii":
            strategies[plan.column] = plan.operator
        elif plan.kind == "free_text":
            strategies[plan.column] = {
                t: config.operators.get(t, config.default_operator) for t in sorted(found)
            }
        if plan.column not in output.columns:
            state = "dropped"
        else:
            state = "transformed" if plan.kind in ("pii", "free_text") else "unchanged"
        columns.append(
            {
                **asdict(plan),
                "output": state,
                "entity_counts": found,
                "residual": residual.get(plan.column),
            }
        )
    return columns, strategies
