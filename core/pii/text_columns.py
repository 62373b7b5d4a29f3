"""Free-text columns and column names, through the :class:`~.text.TextScanner`.

A free-text value first loses its row's own values of PII columns found in it verbatim
(so a name gets its column's pseudonym), then goes through the scanner (rules, NER,
check). Column names are scanned like text, with ``snake_case`` names also read as words;
a name that holds PII is replaced by ``redacted_<type>_<position>`` in the output and in
every report.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.pii.names import NameRules
from mlsecops_provider.core.pii.patterns import Span, scan_text
from mlsecops_provider.core.pii.text import TextScanner, apply_spans

if TYPE_CHECKING:
    import pandas as pd

    from mlsecops_provider.core.pii.transform import Transformer

MIN_LINK_CHARS = 3
_SNAKE_RE = re.compile(r"[_\-.]+")


def free_text(
    series: pd.Series,
    links: Sequence[tuple[pd.Series, str]],
    scanner: TextScanner,
    transformer: Transformer,
) -> tuple[pd.Series, Counter[str], list[list[str]]]:
    """The de-identified column, entity counts, and residual entity types per row."""
    import numpy as np
    import pandas as pd

    function = transformer.span_function()
    values = series.to_numpy(dtype=object)
    present = series.notna().to_numpy()
    linked = [(c.astype("str").where(c.notna()).to_numpy(dtype=object), e) for c, e in links]
    counts: Counter[str] = Counter()
    rows: list[str] = []
    for row, value in enumerate(values):
        text = str(value) if present[row] else ""
        spans = _linked_spans(text, row, linked) if linked and text else []
        counts.update(s.entity_type for s in spans)
        rows.append(apply_spans(text, spans, function))
    codes, uniques = pd.factorize(pd.Series(rows, dtype=object))
    out, found, residual = scanner.deidentify([str(u) for u in uniques], function)
    result = np.array(out + [None], dtype=object)[np.where(present, codes, -1)]
    for code in codes[present]:
        counts.update(found[code])
    per_row = [residual[code] if present[row] else [] for row, code in enumerate(codes)]
    dtype = series.dtype if pd.api.types.is_string_dtype(series.dtype) else object
    return pd.Series(result, index=series.index, dtype=dtype, name=series.name), counts, per_row


def _linked_spans(text: str, row: int, linked: Sequence[tuple[Any, str]]) -> list[Span]:
    spans = []
    for values, entity in linked:
        value = values[row]
        if not isinstance(value, str) or len(value) < MIN_LINK_CHARS:
            continue
        start = text.find(value)
        while start >= 0:
            spans.append(Span(entity, start, start + len(value)))
            start = text.find(value, start + len(value))
    return spans


def scan_headers(
    frame: pd.DataFrame, scanner: TextScanner
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """``{safe name: input name}`` and one report entry per name that holds PII."""
    names = [str(c) for c in frame.columns]
    readable = [_SNAKE_RE.sub(" ", n).strip() for n in names]
    # the lexicon and the table's names only (no "unknown pair": headers abbreviate)
    header_rules = NameRules(deny=scanner.names.deny)
    found = [
        [s.entity_type for s in scan_text(n, scanner.entities) + header_rules.find(n)]
        for n in names
    ]
    worded = [[s.entity_type for s in header_rules.find(r.title())] for r in readable]
    spaced = [i for i, n in enumerate(names) if " " in n.strip() or any(c.isupper() for c in n)]
    ner = scanner.check([names[i] for i in spaced], ner=True) if spaced else []
    for i, types in zip(spaced, ner, strict=True):
        found[i] = found[i] + types
    sources: dict[str, str] = {}
    headers = []
    for i, name in enumerate(names):
        types = sorted(set(found[i]) | set(worded[i] if "PERSON" not in worded[i] else []))
        if "PERSON" in worded[i] and _all_name_words(readable[i], header_rules):
            types = sorted({*types, "PERSON"})
        if types:
            safe = f"redacted_{types[0].lower()}_{i}"
            headers.append({"position": i, "entity_types": types, "renamed_to": safe})
            sources[safe] = name
        else:
            sources[name] = name
    if len(sources) != len(names):
        raise ValueError("renamed headers collide with existing column names")
    return sources, headers


def _all_name_words(readable: str, rules: NameRules) -> bool:
    """A snake_case name read as words is a person only if the rules take every word."""
    title = readable.title()
    spans = rules.find(title)
    covered = sum(s.end - s.start for s in spans)
    return covered >= len(title.replace(" ", "")) and len(title.split()) >= 2
