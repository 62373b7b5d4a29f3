"""The merge of sharded de-identification: one dataset, one gate result.

Before anything is merged, every shard result is checked against what the merge can check
cheaply: the partial's digest (from the shard task's return value), the plan's digest in
it, the shard against the plan (index, digest, rows), a complete cover of the input
(:func:`~mlsecops_provider.core.shards.split.check_cover`), the output's digest (read in
one streaming pass), its row count, columns and schema, and whether the claimed residual
tallies allow the output at all. A random sample of every output shard (``SPOT_ROWS``
rows, a fresh draw per merge) is scanned again with the rules (pattern pass, the deny
list's digests, digits; no NER): a hit in a column the partial says is free of residual
PII refuses the merge. Nothing is published unless every check holds and no shard blocks.

The output is the shards concatenated in the input's format: Parquet row groups copied
with one ``ParquetWriter`` and the schema of the shards (each row group written contiguous,
as :class:`~.chunks.ChunkSink` writes a chunk), so that with shards at multiples of
``chunk_rows`` the bytes are those of the single-task path; CSV as the header once, then
every shard's body. The report adds up the partials (row numbers are positions in the
whole input) through the single path's own report code.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, cast

from mlsecops_provider.core.data.datasets import DatasetRef
from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.evidence import GateResult, Verdict
from mlsecops_provider.core.pii.chunks import ChunkSink, open_source
from mlsecops_provider.core.pii.gate import GATE, Deidentifier, PIIConfig
from mlsecops_provider.core.pii.names import NameRules
from mlsecops_provider.core.pii.plan import digit_types, is_numeric
from mlsecops_provider.core.pii.shard_plan import PARTIAL_SCHEMA, ShardPlan, read_json
from mlsecops_provider.core.pii.stream import STEPS, Totals
from mlsecops_provider.core.pii.text import TextScanner
from mlsecops_provider.core.pii.verify import _text_types
from mlsecops_provider.core.shards.split import ShardRef, check_cover
from mlsecops_provider.core.storage import S3ClientFactory

log = logging.getLogger(__name__)

SPOT_ROWS = 200
COPY_BYTES = 1 << 20


@dataclass(frozen=True)
class Part:
    """One verified shard result: the shard, its partial and its output (or None)."""

    shard: ShardRef
    partial: dict[str, Any] = field(repr=False)
    output: dict[str, Any] | None


@dataclass(frozen=True)
class Merged:
    """The gate's result and report, the input, and the output (None: nothing published)."""

    result: GateResult
    details: dict[str, Any]
    source: DatasetRef
    output: DatasetRef | None


class _RulesOnly(TextScanner):
    """The rules of the text scanner without spaCy (the merge's spot check)."""

    def ner(self, texts: Sequence[str]) -> list[list[Any]]:
        return [[] for _ in texts]


class _Recorded:
    """The engine's place in the report: the tool versions the plan recorded."""

    def __init__(self, versions: dict[str, str]) -> None:
        self.versions = versions

    def tool_versions(self) -> dict[str, str]:
        return dict(self.versions)


def load_parts(
    plan: ShardPlan, plan_sha256: str, parts: Sequence[Any], config: PIIConfig, factory: Any
) -> list[Part]:
    """The shard results in order, each verified against its partial and the plan."""
    loaded = []
    for part in parts:
        if not isinstance(part, dict) or not isinstance(part.get("partial"), dict):
            raise DataError(f"not a shard result: {str(part)[:200]}")
        ref = part["partial"]
        partial = read_json(str(ref.get("uri")), str(ref.get("sha256")), PARTIAL_SCHEMA, factory)
        try:
            loaded.append(_part(plan, plan_sha256, part, partial, config))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise DataError(f"{ref.get('uri')}: not a valid partial ({err})") from err
    ordered = check_cover([p.shard for p in loaded])
    by_index = {p.shard.index: p for p in loaded}
    return [by_index[s.index] for s in ordered]


def _part(plan: ShardPlan, plan_sha256: str, part: dict, partial: dict, config: PIIConfig) -> Part:
    shard = plan.shard(partial["shard"])
    if partial["plan_sha256"] != plan_sha256:
        raise DataError(f"{shard.label}: its partial was made with another plan")
    if partial["shard"] != part.get("shard") or partial["output"] != part.get("output"):
        raise DataError(f"{shard.label}: the task's result and its partial disagree")
    _check_claims(shard, partial, config)
    return Part(shard, partial, partial["output"])


def _check_claims(shard: ShardRef, partial: dict[str, Any], config: PIIConfig) -> None:
    """The partial's numbers hang together and allow what it says about the output."""
    residual = partial["residual"]
    if partial["rows"] != shard.rows:
        raise DataError(
            f"{shard.label}: the partial counts {partial['rows']} rows, not {shard.rows}"
        )
    for column, tally in residual.items():
        if not 0 <= tally["rows_with_pii"] <= tally["rows_scanned"] <= shard.rows:
            raise DataError(f"{shard.label}: inconsistent residual tally for {column!r}")
    worst = max((t["rows_with_pii"] / t["rows_scanned"] for t in residual.values()
                 if t["rows_scanned"]), default=0.0)  # fmt: skip
    output = partial["output"]
    if output is not None and (worst > config.max_residual_rate or partial["blocks"]):
        raise DataError(f"{shard.label}: an output with residual PII above the maximum")
    if output is not None and int(output.get("rows", -1)) != shard.rows:
        raise DataError(
            f"{shard.label}: the output has {output.get('rows')} rows, not {shard.rows}"
        )


def merge_shards(
    config: PIIConfig,
    plan: ShardPlan,
    plan_sha256: str,
    parts: Sequence[Any],
    key: bytes,
    target_uri: str,
    factory: S3ClientFactory | None = None,
) -> Merged:
    """Verify the shard results, merge the outputs into ``target_uri`` if none blocks."""
    deny = plan.check(key, config)
    ordered = load_parts(plan, plan_sha256, parts, config, factory)
    fmt = str(plan.data["format"])
    source = DatasetRef(plan.data["source_uri"], plan.data["source_sha256"],
                        sum(p.shard.rows for p in ordered), tuple(plan.columns), fmt)  # fmt: skip
    blocked = [p.shard.index for p in ordered if p.output is None]
    scanner = _RulesOnly(nlp=None, entities=frozenset(config.entities), names=NameRules(table=deny))
    output: DatasetRef | None = None
    with ChunkSink(target_uri, fmt, factory) as sink:
        spot = 0
        if not blocked:
            for part in ordered:
                spot += _append(sink, part, plan, config, scanner, factory)
        digest = sink.close() if not blocked else None
        result, details = _result(config, plan, plan_sha256, ordered, digest, blocked)
        details["sharding"]["spot_check_rows"] = spot
        if digest is not None and not result.verdict.blocks:
            sink.publish()
            output = DatasetRef(target_uri, digest, sink.rows, sink.columns, fmt)
    return Merged(result, details, source, output)


def _append(
    sink: ChunkSink,
    part: Part,
    plan: ShardPlan,
    config: PIIConfig,
    scanner: TextScanner,
    factory: S3ClientFactory | None,
) -> int:
    """One verified output shard appended to the sink; its spot check; rows checked."""
    out = cast(dict, part.output)
    picks = sorted(secrets.SystemRandom().sample(range(part.shard.rows),
                                                 min(SPOT_ROWS, part.shard.rows)))  # fmt: skip
    with open_source(str(out["uri"]), str(out["sha256"]), factory) as verified:
        if verified.format != part.shard.format:
            raise DataError(f"{part.shard.label}: the output is not {part.shard.format}")
        if part.shard.format == "parquet":
            sample = _append_parquet(sink, verified.path, part, picks)
        else:
            sample = _append_csv(sink, verified.path, part, picks)
    if tuple(map(str, sample.columns)) != tuple(out["columns"]):
        raise DataError(f"{part.shard.label}: the output's columns are not the partial's")
    _spot_check(sample, plan, config, scanner, part)
    return len(sample)


def _append_parquet(sink: ChunkSink, path: Path, part: Part, picks: list[int]) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    if parquet.metadata.num_rows != part.shard.rows:
        raise DataError(f"{part.shard.label}: the output has {parquet.metadata.num_rows} rows")
    schema = parquet.schema_arrow
    if sink._writer is not None and not schema.equals(sink._writer.schema, check_metadata=True):
        raise DataError(f"{part.shard.label}: the output's schema differs from shard 1's")
    samples, start = [], 0
    for group in range(parquet.num_row_groups):
        table = parquet.read_row_group(group)
        sink.append_table(table, schema)
        local = [r - start for r in picks if start <= r < start + table.num_rows]
        if local:
            samples.append(table.take(local))
        start += table.num_rows
    sink.rows += start
    return pa.concat_tables(samples).to_pandas() if samples else schema.empty_table().to_pandas()


def _append_csv(sink: ChunkSink, path: Path, part: Part, picks: list[int]) -> Any:
    import io

    import pandas as pd

    wanted, sample, rows = set(picks), [], 0
    with path.open("rb") as handle:
        records = _records(handle)
        header = next(records, b"")
        if sink.rows == 0:
            sink.append_bytes(header)
            sink.header = header  # type: ignore[attr-defined]
        elif header != getattr(sink, "header", None):
            raise DataError(f"{part.shard.label}: the output's header differs from shard 1's")
        pending: list[bytes] = []
        size = 0
        for record in records:
            if record.strip():
                if rows in wanted:
                    sample.append(record)
                rows += 1
            pending.append(record)
            size += len(record)
            if size >= COPY_BYTES:
                sink.append_bytes(b"".join(pending))
                pending, size = [], 0
        sink.append_bytes(b"".join(pending))
    if rows != part.shard.rows:
        raise DataError(f"{part.shard.label}: the output has {rows} rows, not {part.shard.rows}")
    sink.rows += rows
    sink.columns = sink.columns or tuple(part.output["columns"])  # type: ignore[index]
    text = header + b"".join(r if r.endswith(b"\n") else r + b"\n" for r in sample)
    return pd.read_csv(io.BytesIO(text), dtype=str, keep_default_na=False, na_filter=False)


def _records(handle: BinaryIO) -> Iterator[bytes]:
    """Whole CSV records (a quoted field may hold newlines), each with its line ending."""
    pending: list[bytes] = []
    quotes = 0
    for line in handle:
        pending.append(line)
        quotes += line.count(b'"')
        if quotes % 2 == 0:
            yield b"".join(pending)
            pending, quotes = [], 0
    if pending:
        yield b"".join(pending)


def _spot_check(
    sample: Any, plan: ShardPlan, config: PIIConfig, scanner: TextScanner, part: Part
) -> None:
    """The rules over the sampled rows: a hit where the partial claims none refuses."""
    kinds = {p.column: p.kind for p in plan.plans}
    claimed = part.partial["residual"]
    for column in map(str, sample.columns):
        kind = kinds.get(column, "clean")
        if kind in ("excluded", "not_scanned") or not len(sample):
            continue
        series = sample[column].dropna()
        if not is_numeric(series):
            series = series[series.astype(str) != ""]
        values = [str(v) for v in series] if not is_numeric(series) else list(series)
        if kind == "free_text":
            types = scanner.check(values, ner=False)
        elif is_numeric(series):
            types = [[t] if t else [] for t in digit_types(values, column, config.entities)]
        else:
            types = _text_types(values, column, config, scanner)
        hits = sum(1 for t in types if t)
        if hits and not claimed.get(column, {}).get("rows_with_pii"):
            raise DataError(
                f"{part.shard.label}: the partial claims no residual PII in column {column!r}, "
                f"but {hits} of {len(values)} output rows checked hold some"
            )


def _result(
    config: PIIConfig,
    plan: ShardPlan,
    plan_sha256: str,
    ordered: list[Part],
    digest: str | None,
    blocked: list[int],
) -> tuple[GateResult, dict[str, Any]]:
    """The single path's report over the added-up partials."""
    import pandas as pd

    totals = _added_up(ordered, plan)
    timings = {f"seconds_{s}": round(totals.seconds[s], 3) for s in STEPS}
    plans = plan.plans
    dropped = {p.column for p in plans if p.kind == "pii" and p.operator == "drop"}
    head = pd.DataFrame(columns=plan.columns)
    output = pd.DataFrame(columns=[c for c in plan.columns if c not in dropped])
    subjects = {"input": f"sha256:{plan.data['source_sha256']}"}
    if digest is not None:
        subjects["output"] = f"sha256:{digest}"
    start = GateResult(gate=GATE, verdict=Verdict.ERROR, subjects=subjects)
    engine = _Recorded(plan.data["tool_versions"])
    deidentifier = Deidentifier(config, cast(Any, None), cast(Any, engine))
    outcome = deidentifier._outcome(
        start, head, output, plans, totals.counts, totals.ordered(), timings,
        plan.data["headers"], dict(plan.data["sampling"]), rows=totals.rows,
    )  # fmt: skip
    result = outcome.result
    result.metrics["ner_texts"] = int(plan.data["ner_texts"]) + sum(
        int(p.partial["ner_texts"]) for p in ordered
    )
    result.metrics["chunks"] = totals.chunks
    result.metrics["shards"] = len(ordered)
    if blocked and not result.verdict.blocks:  # judged per shard: one shard over the max
        result = replace(result, verdict=Verdict.FAIL)
    if blocked:
        result = replace(result, message=f"{result.message}; shard(s) {[i + 1 for i in blocked]}"
                         " hold residual PII above the maximum: nothing published")  # fmt: skip
    details = dict(outcome.details)
    details["sharding"] = _sharding(plan, plan_sha256, ordered, blocked)
    return result, details


def _added_up(ordered: list[Part], plan: ShardPlan) -> Totals:
    """The partials' counts, tallies, rows and timings, in shard order."""
    totals = Totals()
    for part in ordered:
        partial = part.partial
        totals.add({c: Counter(n) for c, n in partial["counts"].items()}, partial["residual"], 0)
        totals.rows += partial["rows"]
        totals.chunks += partial["chunks"]
        for step in STEPS:
            totals.seconds[step] += partial["seconds"][step]
    totals.seconds["detect"] += float(plan.data["seconds_detect"])
    return totals


def _sharding(
    plan: ShardPlan, plan_sha256: str, ordered: list[Part], blocked: list[int]
) -> dict[str, Any]:
    """The report's account of the shards (digests, rows, residual rows, timings)."""
    return {
        "plan_sha256": plan_sha256,
        "shards": len(ordered),
        "chunk_rows": plan.chunk_rows,
        "aligned": plan.data["aligned"],
        "blocked": [i + 1 for i in blocked],
        "per_shard": [
            {
                "index": p.shard.index,
                "offset": p.shard.offset,
                "rows": p.shard.rows,
                "residual_rows": p.partial["residual_rows"],
                "output_sha256": (p.output or {}).get("sha256"),
                "seconds": p.partial["seconds"],
            }
            for p in ordered
        ],  # fmt: skip
    }
