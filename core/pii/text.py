"""Free text: the pattern pass and name rules first, spaCy NER on what is left, then a check.

For the distinct texts of a column:

1. *rules*: the pattern pass (:mod:`.patterns`) and the name rules (:mod:`.names`: the
   table's deny list, the lexicon, context) find spans; they are replaced at once;
2. *NER*: spaCy (``nlp.pipe``, only the NER component, optionally in two processes) runs
   on the text *after* step 1; words spaCy tags as a person are added to the scanner's
   deny list (the table's list plus what this chunk taught), which is applied again to
   every text (a surname seen once is caught in every text of the chunk); these spans are
   replaced too. The streaming and sharded paths start every chunk with
   :meth:`.names.NameRules.scoped` rules, so nothing learnt crosses chunks;
3. *verify*: every text whose output differs from what NER saw in step 2 goes through
   rules and NER again (a text NER has already seen in its final form is not re-run:
   NER is deterministic); what is found is replaced (at most ``REPAIR_ROUNDS`` times) and
   whatever is still found after that is *residual*.

So spaCy runs about once per distinct text, and every final text has been checked by the
pattern pass, the name rules and NER in its final form.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mlsecops_provider.core.pii.names import LEXICON_ANY, NOT_NAMES, PERSON, NameRules
from mlsecops_provider.core.pii.patterns import Span, merge_spans, scan_text

log = logging.getLogger(__name__)

# spaCy labels -> entity types
NER_LABELS = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "NORP": "NRP",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
TOKEN_RE = re.compile(r"<([A-Z][A-Z0-9_]*?)(?:_[0-9a-f]{16})?>")
REPAIR_ROUNDS = 2
MIN_PARALLEL_TEXTS = 2000
CHUNK = 1000
_CAP_WORD_RE = re.compile(r"[^\W\d_][\w'’-]*")
_LAST_WORD_RE = re.compile(r"[^\W\d_][\w'’-]*$")

Replace = Callable[[str, list[Span]], str]


def ner_entities(
    nlp: Any, texts: Sequence[str], batch_size: int = 256, n_process: int = 1
) -> list[list[tuple[str, int, int]]]:
    """spaCy's entities ``(label, start, end)`` per text; forked workers for large inputs."""
    global _WORKER_NLP
    if not texts:
        return []
    if n_process > 1 and len(texts) >= MIN_PARALLEL_TEXTS and _can_fork():
        _WORKER_NLP = nlp
        chunks = [(list(texts[i : i + CHUNK]), batch_size) for i in range(0, len(texts), CHUNK)]
        try:
            with multiprocessing.get_context("fork").Pool(n_process) as pool:
                return [ents for part in pool.map(_ner_chunk, chunks) for ents in part]
        finally:
            _WORKER_NLP = None
    return _ner_chunk((list(texts), batch_size), nlp)


_WORKER_NLP: Any = None


def _ner_chunk(args: tuple[list[str], int], nlp: Any = None) -> list[list[tuple[str, int, int]]]:
    texts, batch_size = args
    model = nlp if nlp is not None else _WORKER_NLP
    return [
        [(e.label_, e.start_char, e.end_char) for e in doc.ents]
        for doc in model.pipe(texts, batch_size=batch_size)
    ]


def _can_fork() -> bool:
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    return not multiprocessing.current_process().daemon  # Celery prefork workers are daemons


def token_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in TOKEN_RE.finditer(text)] if "<" in text else []


def outside_tokens(text: str, spans: list[Span]) -> list[Span]:
    """Spans not inside (or overlapping) our own ``<TYPE…>`` tokens, with text in them."""
    tokens = token_spans(text)
    return [
        s
        for s in spans
        if text[s.start : s.end].strip()
        and not any(s.start < end and start < s.end for start, end in tokens)
    ]


def apply_spans(text: str, spans: list[Span], function: Callable[[str, str], str]) -> str:
    """Replace each span (merged, left to right) by ``function(entity, span text)``."""
    if not spans:
        return text
    parts, last = [], 0
    for span in merge_spans(spans):
        parts += [text[last : span.start], function(span.entity_type, text[span.start : span.end])]
        last = span.end
    parts.append(text[last:])
    return "".join(parts)


_CANDIDATE_RE = re.compile(r"[^\W\d_][^\W\d_'’-]*(?:['’-][^\W\d_]+)*")
_SENTENCE_GAP = re.compile(r"(?:^|[.!?:;]\s+|\n\s*|[\"(]\s*)$")
ALWAYS_CAPITALISED = frozenset(
    [
        "i",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "ok",
    ]
)


@functools.cache
def english_words(nlp: Any) -> frozenset[str]:
    """The model's own word list (the lemmatizer's WordNet index), lower case; empty if the
    model has none, so that every capitalised word then goes to NER."""
    try:
        index = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index")
    except (KeyError, AttributeError, ValueError):
        return frozenset()
    return frozenset(w for words in index.values() for w in words if w.isalpha())


@dataclass
class TextScanner:
    """Rules plus NER over texts, for one chunk (its deny list grows while it runs)."""

    nlp: Any
    entities: frozenset[str]
    names: NameRules
    batch_size: int = 256
    n_process: int = 1

    def __post_init__(self) -> None:
        self.ner_calls = 0  # texts sent to spaCy (reported)
        self.dictionary = english_words(self.nlp)
        self.ner_entities = self.entities & frozenset(NER_LABELS.values())

    def needs_ner(self, text: str) -> bool:
        """Whether NER could add anything the rules did not settle: a capitalised word
        outside our tokens that is not an ordinary English word opening a sentence (or a
        month, weekday, "I"). spaCy's small model tags names and places by capitalisation;
        lower-case names are the rules' job (the table's deny list)."""
        if not self.ner_entities or not any(c.isupper() for c in text):
            return False
        tokens = token_spans(text)
        for m in _CANDIDATE_RE.finditer(text):
            word = m.group()
            if not word[0].isupper() or any(a <= m.start() < b for a, b in tokens):
                continue
            key = word.lower()
            if key in ALWAYS_CAPITALISED or (word.isupper() and len(word) <= 4):
                continue
            initial = bool(_SENTENCE_GAP.search(text, 0, m.start()))
            known = key in self.dictionary and not self.names.denies(key)
            if not (initial and known and word.title() not in LEXICON_ANY):
                return True
        return False

    def rules(self, text: str) -> list[Span]:
        spans = scan_text(text, self.entities)
        if PERSON in self.entities:
            spans += self.names.find(text)
        return outside_tokens(text, spans)

    def ner(self, texts: Sequence[str]) -> list[list[Span]]:
        """NER spans per text; texts :meth:`needs_ner` settles are not sent to spaCy."""
        wanted = [i for i, text in enumerate(texts) if self.needs_ner(text)]
        found = ner_entities(self.nlp, [texts[i] for i in wanted], self.batch_size, self.n_process)
        spans: list[list[Span]] = [[] for _ in texts]
        for i, ents in zip(wanted, found, strict=True):
            spans[i] = self._mapped(texts[i], ents)
        self.ner_calls += len(wanted)
        return spans

    def _mapped(self, text: str, ents: list[tuple[str, int, int]]) -> list[Span]:
        spans = []
        for label, start, end in ents:
            entity = NER_LABELS.get(label)
            if entity is None or entity not in self.entities:
                continue
            value = text[start:end]
            letters = sum(c.isalpha() for c in value)
            if letters < 2 or sum(c.isdigit() for c in value) > letters:
                continue
            if entity == PERSON:
                start, end = _extend(text, start, end)
            spans.append(Span(entity, start, end, 0.85))
        return outside_tokens(text, spans)

    def deidentify(
        self, texts: Sequence[str], function: Callable[[str, str], str]
    ) -> tuple[list[str], list[list[str]], list[list[str]]]:
        """Outputs, entity types replaced per text, residual entity types per text."""
        found: list[list[str]] = [[] for _ in texts]
        stage = []
        for i, text in enumerate(texts):
            spans = self.rules(text)
            found[i] += [s.entity_type for s in merge_spans(spans)]
            stage.append(apply_spans(text, spans, function))
        ner = self.ner(stage)
        self.names.learn(stage, ner)
        seen = list(stage)  # the text NER last saw (or settled), per index
        out = []
        for i, text in enumerate(stage):
            spans = merge_spans(ner[i] + self.rules(text))  # rules again: the deny list grew
            found[i] += [s.entity_type for s in spans]
            out.append(apply_spans(text, spans, function))
        # an output equal to its stage text has been through the rules and NER as it is
        changed = [i for i in range(len(out)) if out[i] != seen[i]]
        residual = self._verify(out, seen, found, function, changed)
        return out, found, residual

    def _verify(
        self,
        out: list[str],
        seen: list[str],
        found: list[list[str]],
        function: Callable[[str, str], str],
        todo: list[int],
    ) -> list[list[str]]:
        """Rules and NER on every output not yet checked as it is; repair; residual."""
        residual: list[list[str]] = [[] for _ in out]
        for round_ in range(REPAIR_ROUNDS + 1):
            unseen = [i for i in todo if out[i] != seen[i]]
            ner = dict(zip(unseen, self.ner([out[i] for i in unseen]), strict=True))
            for i in unseen:
                seen[i] = out[i]
            hits = {}
            for i in todo:
                spans = merge_spans(ner.get(i, []) + self.rules(out[i]))
                if spans:
                    hits[i] = spans
            if not hits:
                return residual
            if round_ == REPAIR_ROUNDS:
                for i, spans in hits.items():
                    residual[i] = [s.entity_type for s in spans]
                return residual
            for i, spans in hits.items():
                found[i] += [s.entity_type for s in spans]
                out[i] = apply_spans(out[i], spans, function)
            todo = sorted(hits)
        return residual

    def check(self, texts: Sequence[str], ner: bool) -> list[list[str]]:
        """Entity types found in each text (rules, and NER when asked): no change made."""
        spans = [self.rules(t) for t in texts]
        if ner:
            spans = [a + b for a, b in zip(spans, self.ner(texts), strict=True)]
        return [[s.entity_type for s in merge_spans(found)] for found in spans]


def _extend(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow a PERSON span over capitalised words joined to it by one space (not "Customer")."""
    while text[end : end + 1] == " ":
        m = _CAP_WORD_RE.match(text, end + 1)
        if not m or not m.group()[0].isupper() or m.group().lower() in NOT_NAMES:
            break
        end = m.end()
    if start >= 2 and text[start - 1] == " ":
        m = _LAST_WORD_RE.search(text, 0, start - 1)
        if m and m.group()[0].isupper() and m.group().lower() not in NOT_NAMES:
            before = text[: m.start()].rstrip()
            if before and before[-1] not in ".!?:;":
                start = m.start()
    return start, end
