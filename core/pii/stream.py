"""The PII gate on inputs of any size: plan once, then transform and verify chunk by chunk.

1. The first chunk (``chunk_rows`` rows, see :mod:`.chunks`) gives the column names (header
   scan) and the random sample that decides each column's strategy, as
   :meth:`.gate.Deidentifier.run` does on a whole frame.
2. When the input has more than one chunk and ``link_row_values`` is on, one pass over the
   PERSON columns only fills the table-wide deny list with every name of the table, so a
   name in the free text of chunk 1 that appears in the name column of chunk 9 is caught.
3. Every chunk is transformed and verified (every cell, as in :mod:`.verify`) and written to
   the :class:`~.chunks.ChunkSink` (a temporary file, hashed while written). Residual
   counts add up over chunks; row numbers in the report are positions in the whole input.

A chunk's result depends only on the plan, the table-wide deny list and the chunk itself:
every chunk starts with fresh name rules over that list (:meth:`.names.NameRules.scoped`),
so what spaCy taught in one chunk is not carried to the next. That is what lets the
sharded path (:mod:`.sharded`) give the same bytes with chunks in different tasks.

The caller publishes the sink only when the verdict does not block: residual PII in any
chunk fails the gate and no output appears. A column planned clean from the first chunk
that holds PII further on is not transformed, so the scan of that chunk fails the gate
(fail closed).
Memory is bounded by a chunk (and the deny list of distinct names), not by the input.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mlsecops_provider.core.errors import DataError, MLSecOpsError
from mlsecops_provider.core.evidence import GateResult, Verdict
from mlsecops_provider.core.pii.chunks import Chunk, ChunkSink, ChunkSource
from mlsecops_provider.core.pii.gate import GATE, Deidentifier, Outcome
from mlsecops_provider.core.pii.names import DenySet, NameRules
from mlsecops_provider.core.pii.plan import ColumnPlan, plan_columns
from mlsecops_provider.core.pii.text import TextScanner
from mlsecops_provider.core.pii.text_columns import scan_headers
from mlsecops_provider.core.pii.verify import EXAMPLE_ROWS, verify_output

STEPS = ("detect", "transform", "verify")


@dataclass(frozen=True)
class Streamed:
    """The gate's outcome (its ``frame`` is the first chunk's output only) and the input's
    row count; the output's digest, rows and columns are on the sink."""

    outcome: Outcome
    rows: int
    chunks: int
    input_columns: tuple[str, ...] = field(default=())


@dataclass
class Totals:
    """What adds up over chunks (and shards): counts, residual tallies, timings, rows."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    residual: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STEPS, 0.0))
    rows: int = 0
    chunks: int = 0

    def add(
        self, counts: Mapping[str, Counter[str]], residual: Mapping[str, Any], offset: int
    ) -> None:
        for column, found in counts.items():
            self.counts.setdefault(column, Counter()).update(found)
        for column, part in residual.items():
            total = self.residual.setdefault(
                column,
                {"rows_scanned": 0, "rows_with_pii": 0, "entity_types": {}, "example_rows": []},
            )
            total["rows_scanned"] += part["rows_scanned"]
            total["rows_with_pii"] += part["rows_with_pii"]
            types = Counter(total["entity_types"])
            types.update(part["entity_types"])
            total["entity_types"] = dict(types)
            examples = total["example_rows"] + [offset + r for r in part["example_rows"]]
            total["example_rows"] = examples[:EXAMPLE_ROWS]
            scanned = total["rows_scanned"]
            total["rate"] = round(total["rows_with_pii"] / scanned, 6) if scanned else 0.0

    def ordered(self) -> dict[str, dict[str, Any]]:
        keys = ("rows_scanned", "rows_with_pii", "rate", "entity_types", "example_rows")
        return {c: {k: r[k] for k in keys} for c, r in self.residual.items()}


@dataclass(frozen=True)
class Head:
    """What the first chunk decides: safe column names, header findings and the plan."""

    sources: dict[str, str]  # safe (output) name -> input name; may hold PII, never reported
    headers: list[dict[str, Any]]
    plans: list[ColumnPlan]
    frame: Any = field(repr=False)  # the first chunk under the safe names

    @property
    def transformed(self) -> frozenset[str]:
        return frozenset(p.column for p in self.plans if p.kind in ("pii", "free_text"))

    def people(self) -> list[str]:
        """The input names of the columns planned as PERSON (the deny list's sources)."""
        return [
            self.sources[p.column] for p in self.plans if p.kind == "pii" and p.entity == "PERSON"
        ]


def check_columns(chunk: Chunk) -> None:
    duplicated = sorted({str(c) for c in chunk.frame.columns[chunk.frame.columns.duplicated()]})
    if duplicated:
        raise DataError(f"{len(duplicated)} duplicate column name(s): cannot de-identify")


def plan_head(deidentifier: Deidentifier, first: Chunk, seed: int, scanner: TextScanner) -> Head:
    """Header scan and column plan from the first chunk (the scanner's rules still empty)."""
    check_columns(first)
    sources, headers = scan_headers(first.frame, scanner)
    head = first.frame.set_axis(list(sources), axis=1)
    plans = plan_columns(head, deidentifier.config, deidentifier.engine, seed)
    return Head(sources, headers, plans, head)


def run_stream(
    deidentifier: Deidentifier,
    source: ChunkSource,
    sink: ChunkSink,
    subjects: Mapping[str, str] | None = None,
) -> Streamed:
    """De-identify ``source`` chunk by chunk into ``sink`` (not published here)."""
    config = deidentifier.config
    result = GateResult(gate=GATE, verdict=Verdict.ERROR, subjects=dict(subjects or {}))
    seed = config.seed if config.seed is not None else secrets.randbits(32)
    chunks = source.chunks()
    first = next(chunks, None)
    if first is None:
        raise DataError(f"{source.uri}: dataset is empty (0 rows)")
    totals = Totals()
    start = time.perf_counter()
    try:
        scanner = deidentifier._scanner()
        head = plan_head(deidentifier, first, seed, scanner)
        base = scanner.names.scoped()
        second = next(chunks, None)
        if second is not None and config.link_row_values:
            base.table = deny_set(source, head.people())
        totals.seconds["detect"] += time.perf_counter() - start
        head_output: Any = None
        rest: Iterator[Chunk] = chunks if second is None else itertools.chain([second], chunks)
        for chunk in itertools.chain([first], rest):
            output = transform_chunk(deidentifier, chunk, head, scanner, base, totals)
            kept = {c: head.sources[c] for c in map(str, output.columns)}
            sink.write(output, chunk.table, kept, head.transformed)
            head_output = output if head_output is None else head_output
    except MLSecOpsError:
        raise
    except Exception as err:  # Presidio/spaCy/pandas: undecided means failed (fail closed)
        raise DataError(f"PII analysis failed ({type(err).__name__})") from err
    sink.close()
    timings = {f"seconds_{s}": round(totals.seconds[s], 3) for s in STEPS}
    sampling = {"seed": seed, "fresh": config.seed is None, "from_rows": len(head.frame)}
    outcome = deidentifier._outcome(
        result, head.frame, head_output, head.plans, totals.counts, totals.ordered(), timings,
        head.headers, sampling, rows=totals.rows,
    )  # fmt: skip
    outcome.result.metrics["ner_texts"] = scanner.ner_calls
    outcome.result.metrics["chunks"] = totals.chunks
    outcome = replace(outcome, sources=kept, transformed=head.transformed)
    return Streamed(outcome, totals.rows, totals.chunks, tuple(map(str, first.frame.columns)))


def transform_chunk(
    deidentifier: Deidentifier,
    chunk: Chunk,
    head: Head,
    scanner: TextScanner,
    base: NameRules,
    totals: Totals,
    offset: int = 0,
) -> Any:
    """One chunk transformed and verified with fresh rules over ``base``'s table: its
    result depends on the plan, the deny list and the chunk only. Row numbers in ``totals``
    are ``offset`` (the chunk source's first row in the whole input) plus the chunk's."""
    scanner.names = base.scoped()
    if chunk.frame.shape[1] != len(head.sources):
        raise DataError("the input's columns changed between chunks")
    frame = chunk.frame.set_axis(list(head.sources), axis=1)
    clock = time.perf_counter()
    output, counts, text_residual = deidentifier._transform(frame, head.plans, scanner)
    middle = time.perf_counter()
    residual = verify_output(output, head.plans, deidentifier.config, scanner, text_residual)
    totals.seconds["transform"] += middle - clock
    totals.seconds["verify"] += time.perf_counter() - middle
    totals.add(counts, residual, offset + chunk.offset)
    totals.rows += len(frame)
    totals.chunks += 1
    return output


def deny_set(source: ChunkSource, people: list[str], into: DenySet | None = None) -> DenySet:
    """Every value of the PERSON columns (whole input, those columns only): the deny list."""
    table = into if into is not None else DenySet()
    if people:
        for chunk in source.chunks(columns=people):
            for column in chunk.frame.columns:
                table.add(str(v) for v in chunk.frame[column].dropna().unique())
    return table
