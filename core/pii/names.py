"""Person names by rule: the table's own names (deny list), a lexicon, context and honorifics.

spaCy's small English model misses names it has not seen in a familiar context. What the
table tells us fills the gap: every word of every value of a column detected as PERSON
goes into a table-wide deny list, so the same name is caught in any row's free text
(alone, reordered, upper- or lower-case); words that spaCy tagged as a person anywhere in
the chunk are added too (:meth:`NameRules.learn`), so a surname mentioned alone in another
row of the chunk is caught as well. Capitalised runs of words are judged as a whole: a run
with a name word in it (deny list or lexicon) is a name, so an unknown surname next to a
known given name goes with it; a run after an honorific (``Dr.``) or a context word
(``spoke with``) is a name whatever its words.

The table-wide deny list is a read-only ``table`` shared by every chunk: a
:class:`DenySet` in one process, or :class:`DenyDigests` (keyed HMAC-SHA256 digests of the
normalised words and values, no name in clear) when it crosses task boundaries; membership
is the same either way (:meth:`NameRules.denies` hashes the candidate word). Names learnt
from spaCy go into the rules' own ``deny`` set, which a chunk starts empty
(:meth:`NameRules.scoped`), so a chunk's result depends only on the table's list and the
chunk.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from mlsecops_provider.core.pii.lexicon import AMBIGUOUS, CONTEXT, GIVEN, HONORIFICS, SURNAMES
from mlsecops_provider.core.pii.patterns import Span

PERSON = "PERSON"
_WORD_RE = re.compile(r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*\.?")
_SENTENCE_END = re.compile(r"[.!?:;\n]\s*$|^\s*$")
MIN_DENY_CHARS = 2
LEXICON = frozenset(w for w in GIVEN | SURNAMES if len(w) > 2) - AMBIGUOUS
LEXICON_ANY = frozenset(w for w in GIVEN | SURNAMES if len(w) > 1)
CONTEXT_LOWER = frozenset(w.lower() for w in CONTEXT)
HONORIFICS_LOWER = frozenset(w.lower() for w in HONORIFICS)
# Capitalised words that start sentences in notes and are never names.
NOT_NAMES = frozenset(w.lower() for w in HONORIFICS) | CONTEXT_LOWER


def _key(word: str) -> str:
    """The lookup form of a word: lower case, no trailing dot, no possessive ``'s``."""
    key = word.rstrip(".").lower()
    return key[:-2] if key.endswith(("'s", "’s")) else key


def normalise_value(value: object) -> str:
    """A whole value as the deny list keeps it: lower case, single spaces."""
    return " ".join(str(value).lower().split())


def deny_words(value: object) -> Iterator[str]:
    """The words of a value that go into the deny list (lookup form, 2+ letters)."""
    for match in _WORD_RE.finditer(str(value)):
        word = _key(match.group()).lower()
        if len(word) >= MIN_DENY_CHARS and word not in NOT_NAMES:
            yield word


@dataclass
class DenySet:
    """The table-wide deny list in clear (it never leaves the process that built it)."""

    words: set[str] = field(default_factory=set)
    values: set[str] = field(default_factory=set)

    def add(self, values: Iterable[object]) -> None:
        for value in values:
            self.values.add(normalise_value(value))
            self.words.update(deny_words(value))

    def has_word(self, word: str) -> bool:
        return word in self.words

    def has_value(self, normalised: str) -> bool:
        return normalised in self.values


DIGEST_DOMAIN = b"mlsecops.pii.deny-list/v1"
_CACHE_MAX = 500_000


def digest_key(key: bytes) -> bytes:
    """The deny list's own key, derived from the pseudonymisation key (domain-separated,
    so that a digest is never equal to a pseudonym of the same value)."""
    return hmac.new(key, DIGEST_DOMAIN, hashlib.sha256).digest()


def keyed_digest(key: bytes, kind: str, text: str) -> str:
    """HMAC-SHA256 of one normalised word (``w``) or value (``v``) under a digest key."""
    return hmac.new(key, f"{kind}\x1f{text}".encode(), hashlib.sha256).hexdigest()


@dataclass
class DenyDigests:
    """The table-wide deny list as keyed digests: matched by hashing the candidate, so a
    holder without the key learns only how many distinct words and values there are."""

    key: bytes = field(repr=False)  # from digest_key(); never serialised
    words: frozenset[str] = frozenset()
    values: frozenset[str] = frozenset()
    _seen: dict[str, bool] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, key: bytes, words: Iterable[str], values: Iterable[str]) -> DenyDigests:
        """From normalised words and values in clear (a :class:`DenySet`'s)."""
        derived = digest_key(key)
        return cls(
            derived,
            frozenset(keyed_digest(derived, "w", w) for w in words),
            frozenset(keyed_digest(derived, "v", v) for v in values),
        )

    def has_word(self, word: str) -> bool:
        hit = self._seen.get(word)
        if hit is None:
            if len(self._seen) >= _CACHE_MAX:
                self._seen.clear()
            hit = self._seen[word] = keyed_digest(self.key, "w", word) in self.words
        return hit

    def has_value(self, normalised: str) -> bool:
        return keyed_digest(self.key, "v", normalised) in self.values


def _cap(word: str) -> bool:
    return word[:1].isupper() and not word.isupper() or (word.isupper() and len(word) > 1)


@dataclass
class NameRules:
    """Name spans in text from a deny list (table words), the lexicon and context."""

    deny: set[str] = field(default_factory=set)  # lower-case words of the table's names
    use_lexicon: bool = True
    # ordinary English words: a lone lower-case deny word that is one is left alone
    dictionary: frozenset[str] = frozenset()
    values: set[str] = field(default_factory=set)  # whole values, lower case
    table: DenySet | DenyDigests | None = None  # the table-wide deny list (read-only)

    def denies(self, word: str) -> bool:
        """Whether a lookup-form word is on the deny list (this scope's or the table's)."""
        return word in self.deny or (self.table is not None and self.table.has_word(word))

    def is_value(self, text: str) -> bool:
        """Whether ``text`` is, as a whole, one of the values the deny list was built from."""
        value = normalise_value(text)
        return value in self.values or (self.table is not None and self.table.has_value(value))

    def scoped(self) -> NameRules:
        """Fresh rules over the same table, dictionary and lexicon (nothing learnt yet)."""
        return NameRules(use_lexicon=self.use_lexicon, dictionary=self.dictionary, table=self.table)

    @classmethod
    def from_values(cls, values: Iterable[str], use_lexicon: bool = True) -> NameRules:
        rules = cls(use_lexicon=use_lexicon)
        rules.add(values)
        return rules

    def add(self, values: Iterable[str]) -> None:
        for value in values:
            self.values.add(normalise_value(value))
            self.deny.update(deny_words(value))

    def learn(self, texts: Iterable[str], spans: Iterable[Iterable[Span]]) -> None:
        """Add the words of spaCy's PERSON spans (3+ letters, capitalised) to the deny list."""
        for text, found in zip(texts, spans, strict=False):
            for span in found:
                if span.entity_type == PERSON:
                    words = [w for w in text[span.start : span.end].split() if len(w) > 2]
                    self.add(w for w in words if _cap(w))

    def find(self, text: str) -> list[Span]:
        words = [(m.start(), m.end(), m.group()) for m in _WORD_RE.finditer(text)]
        spans: list[Span] = []
        i = 0
        while i < len(words):
            word = words[i][2]
            if not _cap(word):  # most words: lower case, and not a name from the table
                if self.denies(_key(word)):
                    spans += self._lower_run(words, i, [_key(word)])
                i += 1
                continue
            j = i
            while j + 1 < len(words) and self._joined(text, words[j], words[j + 1]):
                j += 1
            spans += self._judge(text, words, i, j)
            i = j + 1
        return spans

    @staticmethod
    def _joined(text: str, left: tuple[int, int, str], right: tuple[int, int, str]) -> bool:
        """Two words of one capitalised run: both capitalised, one space between."""
        return _cap(left[2]) and _cap(right[2]) and text[left[1] : right[0]] == " "

    def _judge(self, text: str, words: list[tuple[int, int, str]], i: int, j: int) -> list[Span]:
        run = words[i : j + 1]
        keys = [_key(w[2]) for w in run]
        if not _cap(run[0][2]):
            return self._lower_run(words, i, keys)
        previous = _key(words[i - 1][2]) if i else ""
        after_context = previous in CONTEXT_LOWER or previous in HONORIFICS_LOWER
        stripped = False
        while keys and keys[0] in NOT_NAMES:  # leading honorifics/context words stay
            after_context = stripped = True
            run, keys = run[1:], keys[1:]
        if not run:
            return []
        strict = [self.denies(k) or (self.use_lexicon and k.title() in LEXICON) for k in keys]
        loose = [self.use_lexicon and k.title() in LEXICON_ANY for k in keys]
        initial = not stripped and self._sentence_start(text, run[0][0])
        if any(strict) or (any(loose) and (after_context or len(run) > 1 and not initial)):
            return [Span(PERSON, run[0][0], run[-1][1])]
        if after_context and len(run) <= 3 and not initial:
            return [Span(PERSON, run[0][0], run[-1][1])]
        if self._unknown_pair(run, keys, initial):
            return [Span(PERSON, run[0][0], run[-1][1])]
        return []

    def _unknown_pair(
        self, run: list[tuple[int, int, str]], keys: list[str], initial: bool
    ) -> bool:
        """Two or three capitalised words, one of them no English word: a name (or a place,
        PII too). A run opening a sentence counts only if its first word is no English word."""
        if not self.dictionary or not 2 <= len(run) <= 3 or any(w[2].isupper() for w in run):
            return False
        if initial and keys[0] in self.dictionary:
            return False
        return any(k not in self.dictionary and len(k) > 1 for k in keys)

    def _lower_run(self, words: list[tuple[int, int, str]], i: int, keys: list[str]) -> list[Span]:
        """A lower-case deny-list word next to another ("john smith"), or alone when it is not
        an English word ("per gideon") or follows a context word ("thanks wren")."""
        if not self.denies(keys[0]) or keys[0] in NOT_NAMES:
            return []
        previous = _key(words[i - 1][2]) if i else ""
        if (self.dictionary and keys[0] not in self.dictionary and len(keys[0]) > 2) or (
            previous in CONTEXT_LOWER or previous in HONORIFICS_LOWER
        ):
            return [Span(PERSON, words[i][0], words[i][1])]
        nxt = words[i + 1] if i + 1 < len(words) else None
        prv = words[i - 1] if i else None
        for other in (nxt, prv):
            if other and self.denies(_key(other[2])) and not _cap(other[2]):
                return [Span(PERSON, words[i][0], words[i][1])]
        return []

    @staticmethod
    def _sentence_start(text: str, start: int) -> bool:
        return bool(_SENTENCE_END.search(text[max(0, start - 3) : start]))
