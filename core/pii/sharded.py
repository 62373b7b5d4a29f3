"""Sharded de-identification: one plan over all shards, each shard in its own task, one merge.

The single-task path (:func:`.stream.run_stream`) decides a plan from the first chunk,
builds the table-wide deny list from the PERSON columns, then transforms and verifies chunk
by chunk. The sharded path cuts the same work at shard boundaries:

1. **Plan** (:func:`plan_shards`): the header scan and column plan from the input's first
   ``chunk_rows`` rows (the first shard's, gathered across shards if it is shorter) with the
   policy's seed, or a fresh one drawn once here for every shard; the deny list from the
   PERSON columns of *every* shard. The plan crosses task boundaries as a JSON file whose
   SHA-256 every later task verifies, and holds no value of the data: the deny list travels
   as keyed digests (HMAC-SHA256 under a key derived from the pseudonymisation key, see
   :class:`.names.DenyDigests`), matched by hashing candidate words; column names travel as
   their safe names (a header holding PII is ``redacted_<type>_<i>``) plus keyed digests of
   the input's names, so a shard with other columns is refused.
2. **Shard** (:func:`deidentify_shard`): the shard's chunks transformed and verified with the
   plan. Every chunk starts from the plan and the deny list alone (see :mod:`.stream`), so a
   shard whose first row is a multiple of ``chunk_rows`` gives the bytes the single path
   gives for those rows. A shard with residual PII above ``max_residual_rate`` writes no
   output; otherwise its output and a *partial* (counts, residual tallies with row numbers
   in the whole input, timings; never a value) are written, and their digests returned.
3. **Merge** (:mod:`.sharded_merge`): one dataset, one gate result.

With ``max_residual_rate`` above 0 a shard is judged on its own rows, so the sharded path
can fail where the single path (judging the whole table) passes; never the other way.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import Any

from mlsecops_provider.core.errors import ConfigError, DataError, MLSecOpsError
from mlsecops_provider.core.pii.chunks import Chunk, ChunkSink, open_source
from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig, config_summary
from mlsecops_provider.core.pii.names import DenyDigests, DenySet, digest_key, keyed_digest
from mlsecops_provider.core.pii.shard_plan import (
    KEY_CHECK,
    PARTIAL_SCHEMA,
    PLAN_SCHEMA,
    ShardPlan,
    canonical,
    check_key,
    write_json,
)
from mlsecops_provider.core.pii.stream import STEPS, Head, Totals, deny_set, plan_head
from mlsecops_provider.core.pii.stream import transform_chunk as _transform_chunk
from mlsecops_provider.core.shards.split import ShardRef, check_cover
from mlsecops_provider.core.storage import S3ClientFactory, sha256_bytes, storage_for

log = logging.getLogger(__name__)


def plan_shards(
    deidentifier: Deidentifier,
    shards: Sequence[Any],
    key: bytes,
    target_uri: str,
    factory: S3ClientFactory | None = None,
) -> tuple[ShardPlan, str]:
    """The plan of ``shards`` (every shard of one input) written to ``target_uri``; its
    digest. A plan already there for the same shards and policy is kept (a re-run)."""
    config = deidentifier.config
    ordered = check_cover([ShardRef.from_dict(s) for s in shards])
    derived = digest_key(check_key(key))
    kept = _existing_plan(target_uri, ordered, config, derived, factory)
    if kept is not None:
        return kept
    seed = config.seed if config.seed is not None else secrets.randbits(32)
    start = time.perf_counter()
    try:
        first = _head_chunk(ordered, config.chunk_rows, factory)
        scanner = deidentifier._scanner()
        head = plan_head(deidentifier, first, seed, scanner)
        table = DenySet()
        if config.link_row_values and head.people():
            for shard in ordered:
                with open_source(shard.uri, shard.sha256, factory, config.chunk_rows) as source:
                    deny_set(source, head.people(), into=table)
    except MLSecOpsError:
        raise
    except Exception as err:  # Presidio/spaCy/pandas: undecided means failed (fail closed)
        raise DataError(f"PII analysis failed ({type(err).__name__})") from err
    deny = None
    if config.link_row_values:
        digests = DenyDigests.build(key, table.words, table.values)
        deny = {"words": sorted(digests.words), "values": sorted(digests.values)}
    data = _plan_document(deidentifier, ordered, head, seed, derived, deny)
    data["ner_texts"] = scanner.ner_calls
    data["seconds_detect"] = round(time.perf_counter() - start, 3)
    if not data["aligned"]:
        log.warning("shards do not start at multiples of chunk_rows: the output may differ "
                    "from the single-task path's in chunk-dependent details")  # fmt: skip
    digest = write_json(data, target_uri, factory)
    log.info("PII plan for %d shard(s): %s (sha256 %s)", len(ordered), target_uri, digest[:12])
    return ShardPlan(data), digest


def _planned(ordered: Sequence[ShardRef]) -> list[dict[str, Any]]:
    return [{"index": s.index, "sha256": s.sha256, "offset": s.offset, "rows": s.rows}
            for s in ordered]  # fmt: skip


def _plan_document(
    deidentifier: Deidentifier,
    ordered: list[ShardRef],
    head: Head,
    seed: int,
    derived: bytes,
    deny: dict[str, list[str]] | None,
) -> dict[str, Any]:
    """The plan as JSON: strategies, seed, safe names, digests; no value of the data."""
    config = deidentifier.config
    return {
        "schema": PLAN_SCHEMA,
        "source_uri": ordered[0].source_uri,
        "source_sha256": ordered[0].source_sha256,
        "format": ordered[0].format,
        "shards": _planned(ordered),
        "chunk_rows": config.chunk_rows,
        "aligned": all(s.offset % config.chunk_rows == 0 for s in ordered),
        "policy": config_summary(config),
        "sampling": {"seed": seed, "fresh": config.seed is None, "from_rows": len(head.frame)},
        "columns": list(head.sources),
        "column_digests": [keyed_digest(derived, "c", n) for n in head.sources.values()],
        "headers": head.headers,
        "plans": [asdict(p) for p in head.plans],
        "deny": deny,
        "key_check": keyed_digest(derived, "k", KEY_CHECK),
        "tool_versions": deidentifier.engine.tool_versions(),
    }


def _existing_plan(
    uri: str,
    ordered: list[ShardRef],
    config: PIIConfig,
    derived: bytes,
    factory: S3ClientFactory | None,
) -> tuple[ShardPlan, str] | None:
    storage = storage_for(uri, factory)
    if not storage.exists(uri):
        return None
    payload = storage.read_bytes(uri)
    try:
        plan = ShardPlan(json.loads(payload))
        same = (
            plan.data["schema"] == PLAN_SCHEMA
            and plan.data["shards"] == _planned(ordered)
            and plan.data["source_sha256"] == ordered[0].source_sha256
            and canonical(plan.data["policy"]) == canonical(config_summary(config))
            and plan.data["key_check"] == keyed_digest(derived, "k", KEY_CHECK)
        )
    except (ValueError, KeyError, TypeError):
        same = False
    if not same:
        return None
    log.info("PII plan %s already made for these shards; kept", uri)
    return plan, sha256_bytes(payload)


def _head_chunk(shards: list[ShardRef], rows: int, factory: S3ClientFactory | None) -> Chunk:
    """The input's first ``rows`` rows (one chunk of the single path), across shards."""
    parts: list[Chunk] = []
    filled = 0
    for shard in shards:
        with open_source(shard.uri, shard.sha256, factory, rows) as source:
            chunk = next(source.chunks(), None)
        if chunk is None:
            raise DataError(f"{shard.label}: dataset is empty (0 rows)")
        parts.append(chunk)
        filled += len(chunk.frame)
        if filled >= rows:
            break
    if len(parts) == 1:
        return parts[0]
    return _joined(parts, rows)


def _joined(parts: list[Chunk], rows: int) -> Chunk:
    import pandas as pd
    import pyarrow as pa

    if parts[0].table is not None:
        table = pa.concat_tables([p.table for p in parts]).slice(0, rows)
        return Chunk(table.to_pandas().reset_index(drop=True), 0, table)
    frame = pd.concat([p.frame for p in parts], ignore_index=True).iloc[:rows]
    return Chunk(frame.reset_index(drop=True), 0)


@dataclass(frozen=True)
class ShardDone:
    """What a shard task returns (JSON): the shard, its partial and output, by digest."""

    shard: ShardRef
    partial_uri: str
    partial_sha256: str
    output: dict[str, Any] | None  # {uri, sha256, rows, columns}; None: residual, nothing written
    rows: int
    residual_rows: int
    plan: dict[str, str] = field(default_factory=dict)  # {uri, sha256} of the plan used
    reused: bool = field(default=False, compare=False)  # an earlier run's files, kept

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": dict(self.plan),
            "shard": self.shard.to_dict(),
            "partial": {"uri": self.partial_uri, "sha256": self.partial_sha256},
            "output": self.output,
            "rows": self.rows,
            "residual_rows": self.residual_rows,
        }


def deidentify_shard(
    deidentifier: Deidentifier,
    plan: ShardPlan,
    plan_sha256: str,
    shard_data: Any,
    key: bytes,
    output_uri: str,
    partial_uri: str,
    factory: S3ClientFactory | None = None,
    plan_uri: str = "",
) -> ShardDone:
    """Transform and verify one shard with the plan; write its output (if no residual PII
    above the policy's max) and its partial. A finished shard is not done again."""
    shard = plan.shard(shard_data)
    deny = plan.check(key, deidentifier.config)
    if deidentifier.engine.tool_versions() != plan.data["tool_versions"]:
        raise ConfigError(f"{shard.label}: Presidio/spaCy versions differ from the plan's")
    done = _finished(plan_sha256, shard, partial_uri, factory, plan_uri)
    if done is not None:
        log.info("%s: already done (output sha256 %s); kept", shard.label,
                 (done.output or {}).get("sha256", "-")[:12])  # fmt: skip
        return done
    scanner = deidentifier._scanner()
    base = scanner.names.scoped()
    base.table = deny
    totals = Totals()
    output_ref, blocks = _run_shard(deidentifier, plan, shard, key, scanner, base, totals,
                                    output_uri, factory)  # fmt: skip
    partial = _partial(plan_sha256, shard, output_ref, totals, scanner.ner_calls, blocks)
    digest = write_json(partial, partial_uri, factory)
    used = {"uri": plan_uri, "sha256": plan_sha256}
    return ShardDone(
        shard, partial_uri, digest, output_ref, totals.rows, partial["residual_rows"], used
    )


def _run_shard(
    deidentifier: Deidentifier,
    plan: ShardPlan,
    shard: ShardRef,
    key: bytes,
    scanner: Any,
    base: Any,
    totals: Totals,
    output_uri: str,
    factory: S3ClientFactory | None,
) -> tuple[dict[str, Any] | None, bool]:
    """The shard's chunks into a sink, published only without residual above the max."""
    with ExitStack() as stack:
        source = stack.enter_context(open_source(shard.uri, shard.sha256, factory, plan.chunk_rows))
        sink = stack.enter_context(ChunkSink(output_uri, shard.format, factory))
        try:
            for chunk, head in _with_head(source.chunks(), plan, key):
                output = _transform_chunk(deidentifier, chunk, head, scanner, base, totals,
                                          shard.offset)  # fmt: skip
                kept = {c: head.sources[c] for c in map(str, output.columns)}
                sink.write(output, chunk.table, kept, head.transformed)
        except MLSecOpsError:
            raise
        except Exception as err:  # Presidio/spaCy/pandas: undecided means failed
            raise DataError(f"{shard.label}: PII analysis failed ({type(err).__name__})") from err
        sink.close()
        if totals.rows != shard.rows:
            raise DataError(f"{shard.label}: {totals.rows} rows read, {shard.rows} expected")
        worst = max((r["rate"] for r in totals.ordered().values()), default=0.0)
        if worst > deidentifier.config.max_residual_rate:
            return None, True
        sink.publish()
        return {"uri": output_uri, "sha256": sink.sha256, "rows": sink.rows,
                "columns": list(sink.columns)}, False  # fmt: skip


def _with_head(chunks: Iterator[Chunk], plan: ShardPlan, key: bytes) -> Iterator[tuple]:
    head = None
    for chunk in chunks:
        if head is None:
            sources = plan.sources(key, [str(c) for c in chunk.frame.columns])
            head = Head(sources, plan.data["headers"], plan.plans, None)
        yield chunk, head


def _partial(
    plan_sha256: str,
    shard: ShardRef,
    output: dict[str, Any] | None,
    totals: Totals,
    ner_texts: int,
    blocks: bool,
) -> dict[str, Any]:
    residual = totals.ordered()
    return {
        "schema": PARTIAL_SCHEMA,
        "plan_sha256": plan_sha256,
        "shard": shard.to_dict(),
        "output": output,
        "blocks": blocks,
        "rows": totals.rows,
        "chunks": totals.chunks,
        "counts": {c: dict(n) for c, n in totals.counts.items()},
        "residual": residual,
        "residual_rows": sum(r["rows_with_pii"] for r in residual.values()),
        "ner_texts": ner_texts,
        "seconds": {s: round(totals.seconds[s], 3) for s in STEPS},
    }


def _finished(
    plan_sha256: str,
    shard: ShardRef,
    partial_uri: str,
    factory: S3ClientFactory | None,
    plan_uri: str,
) -> ShardDone | None:
    """The result of an earlier run of this shard task, if its files are all intact."""
    storage = storage_for(partial_uri, factory)
    if not storage.exists(partial_uri):
        return None
    payload = storage.read_bytes(partial_uri)
    try:
        data = json.loads(payload)
        same = data["plan_sha256"] == plan_sha256 and data["shard"] == shard.to_dict()
        output = data["output"]
        if same and output is not None:
            with open_source(output["uri"], output["sha256"], factory):
                pass  # hashed in one streaming pass: the output is intact
    except (ValueError, KeyError, TypeError, MLSecOpsError):
        return None
    if not same:
        return None
    used = {"uri": plan_uri, "sha256": plan_sha256}
    rows, residual_rows = int(data["rows"]), int(data["residual_rows"])
    digest = sha256_bytes(payload)
    return ShardDone(shard, partial_uri, digest, output, rows, residual_rows, used, reused=True)
