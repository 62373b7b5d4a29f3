"""The fast pattern pass: compiled regular expressions with checksums, no NLP.

It runs over every cell of every output column (the verification scan) and over every
free-text value before spaCy does, so it must be cheap and must not miss the common
disguises:

* e-mail addresses, also written ``john.doe[at]example[dot]com``, ``john (at) example
  (dot) com``, ``john at example dot com``, ``john@example dot com``;
* phone numbers: North-American formats, international ``+CC`` numbers, 10-15 digit runs
  broken by spaces, dots, dashes or brackets, the words ``dash``/``dot``/``hyphen`` between
  digit groups, and 7+ spelled-out digits (``five five five ...``);
* US SSNs (``123-45-6789``, spaces or dots, or 9 digits after an SSN keyword) and ITINs;
* card numbers (13-19 digits, separators allowed, Luhn), IBANs (ISO 13616 mod-97);
* IPv4 and IPv6 addresses; street addresses (number + capitalised words + street kind).

:func:`digit_entity` classifies a bare digit string (a numeric cell): card (Luhn and a
known issuer prefix), SSN (valid area/group/serial) or phone (NANP, or ``1`` + NANP).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# fmt: off
_AT = r"(?:\s*@\s*|\s*[\[\(\{<]\s*(?:at|@)\s*[\]\)\}>]\s*|\s+(?:at|AT)\s+|\s*＠\s*)"
_DOT = r"(?:\.|\s*[\[\(\{<]\s*(?:dot|\.)\s*[\]\)\}>]\s*|\s+(?:dot|DOT)\s+)"
_TLD = r"[A-Za-z]{2,24}\b"
EMAIL_RE = re.compile(
    rf"[A-Za-z0-9][A-Za-z0-9._%+\-]*{_AT}[A-Za-z0-9][A-Za-z0-9\-]*(?:{_DOT}[A-Za-z0-9\-]+)*{_DOT}{_TLD}"
)
_DIGIT_WORDS = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
SPELLED_PHONE_RE = re.compile(rf"\b{_DIGIT_WORDS}(?:[\s,-]+{_DIGIT_WORDS}){{6,}}\b", re.I)
_SEP = r"(?:\s*(?:[-./]|dash|dot|hyphen)\s*|\s+|(?<=\)))"
PHONE_RE = re.compile(
    rf"(?<![\w+.,])(?:\+|00)?\(?\d{{1,4}}\)?(?:{_SEP}\(?\d{{1,8}}\)?){{1,6}}(?!\w|[.,]\d)"
    r"|(?<![\w+.,])\+?\d{10,15}(?!\w|[.,]\d)",
    re.I,
)
SHORT_PHONE_RE = re.compile(r"(?<![\w.-])\d{3}[-.]\d{4}(?![\w-])")
SSN_RE = re.compile(r"(?<![\w-])(\d{3})([- .])(\d{2})\2(\d{4})(?![\w-])")
SSN_KEYWORD_RE = re.compile(
    r"(?:ssn|social security(?: number| no\.?)?|ss#|taxpayer id|tin)\W{0,6}(\d{9})\b", re.I
)
ITIN_RE = re.compile(r"(?<![\w-])9\d{2}[- ]?(?:5\d|6[0-5]|7\d|8[0-8]|9[0-24-9])[- ]?\d{4}(?![\w-])")
CARD_RE = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4_RE = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w.]|\.\d)")
IPV6_RE = re.compile(
    r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])"
    r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,6}(?::[0-9A-Fa-f]{1,4}){1,6}(?![\w:])"
)
STREET_RE = re.compile(
    r"\b\d{1,6}\s+(?:[A-Z][a-z]+\.?\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|"
    r"Boulevard|Blvd|Court|Ct|Way|Place|Pl|Terrace|Circle|Parkway|Highway)\b\.?"
)
# a date (and whatever time follows it) is no phone number
_DATE_RE = re.compile(
    r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?!\d)|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}(?!\d)"
)
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")  # Presidio's defaults
CARD_PREFIXES = ("4", "34", "37", "36", "38", "30", "35", "5", "2", "6")
# fmt: on
DIGITS_RE = re.compile(r"\d")
ENTITIES = frozenset(
    {
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "US_SSN",
        "US_ITIN",
        "CREDIT_CARD",
        "IBAN_CODE",
        "IP_ADDRESS",
        "LOCATION",
    }
)
_DECIMAL_AFTER = re.compile(r"[.,]\d")
_AT_DOMAIN_RE = re.compile(r"\sat\s+[a-z0-9-]+\.[a-z]{2,}")
_DIGIT_WORD_RE = re.compile(r"\d|dash|dot|hyphen", re.I)
_CANDIDATE_RE = re.compile(r"(?<![\w.,])[+(]?\d[\d \t().\-/]{5,}\d(?![\w,]|\.\d)")


@dataclass(frozen=True)
class Span:
    """One finding: entity type and character offsets (the value itself is never kept)."""

    entity_type: str
    start: int
    end: int
    score: float = 1.0


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    value = text.replace(" ", "")
    if not 15 <= len(value) <= 34:
        return False
    moved = value[4:] + value[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def ssn_ok(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def nanp_ok(digits: str) -> bool:
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    return len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789"


def digit_entity(digits: str, ssn_hint: bool = False) -> str | None:
    """The PII type a bare digit string (a numeric cell) has, or None."""
    n = len(digits)
    if 13 <= n <= 19 and digits.startswith(CARD_PREFIXES) and luhn_ok(digits):
        return "CREDIT_CARD"
    if ssn_hint and 7 <= n <= 9:
        digits, n = digits.zfill(9), 9
    if n == 9 and ssn_ok(digits[:3], digits[3:5], digits[5:]):
        return "US_SSN"
    if n in (10, 11) and nanp_ok(digits):
        return "PHONE_NUMBER"
    return None


def scan_text(text: str, entities: frozenset[str] | set[str] = ENTITIES) -> list[Span]:
    """Every pattern finding in ``text`` (overlaps allowed; see :func:`merge_spans`)."""
    spans: list[Span] = []
    digit = DIGITS_RE.search(text) is not None
    if "EMAIL_ADDRESS" in entities and _may_hold_email(text):
        spans += [Span("EMAIL_ADDRESS", *m.span()) for m in EMAIL_RE.finditer(text)]
    if digit:
        spans += _digit_spans(text, entities)
    if "PHONE_NUMBER" in entities:
        spans += [Span("PHONE_NUMBER", *m.span()) for m in SPELLED_PHONE_RE.finditer(text)]
    return spans


def _may_hold_email(text: str) -> bool:
    """Cheap pre-check for the (costly) e-mail expression: ``@`` or a written-out form."""
    if "@" in text or "＠" in text:
        return True
    low = text.lower()
    if "dot" in low or any(marker in low for marker in ("at]", "at)", "at}", "at>")):
        return True
    return " at " in low and _AT_DOMAIN_RE.search(low) is not None


def _digit_spans(text: str, entities: frozenset[str] | set[str]) -> list[Span]:
    spans: list[Span] = []
    many = len(DIGITS_RE.findall(text)) >= 7  # SSNs, ITINs, cards, IBANs, phones need 7+
    if many:
        spans += _numbers(text, entities)
    if "IP_ADDRESS" in entities:
        spans += [Span("IP_ADDRESS", *m.span()) for m in IPV4_RE.finditer(text)]
        if ":" in text:
            spans += [Span("IP_ADDRESS", *m.span()) for m in IPV6_RE.finditer(text)]
    if "LOCATION" in entities:
        spans += [Span("LOCATION", *m.span()) for m in STREET_RE.finditer(text)]
    if many and "PHONE_NUMBER" in entities:
        spans += _phones(text, spans)
        spans += _leftover_phones(text, spans)
    return spans


def _numbers(text: str, entities: frozenset[str] | set[str]) -> list[Span]:
    spans: list[Span] = []
    if "US_SSN" in entities:
        for m in SSN_RE.finditer(text):
            if ssn_ok(m.group(1), m.group(3), m.group(4)):
                spans.append(Span("US_SSN", *m.span()))
        spans += [Span("US_SSN", *m.span(1)) for m in SSN_KEYWORD_RE.finditer(text)]
    if "US_ITIN" in entities:
        spans += [Span("US_ITIN", *m.span()) for m in ITIN_RE.finditer(text)]
    if "CREDIT_CARD" in entities:
        for m in CARD_RE.finditer(text):
            if luhn_ok(re.sub(r"\D", "", m.group())):
                spans.append(Span("CREDIT_CARD", *m.span()))
    if "IBAN_CODE" in entities:
        spans += [
            Span("IBAN_CODE", *m.span()) for m in IBAN_RE.finditer(text) if iban_ok(m.group())
        ]
    return spans


def _leftover_phones(text: str, found: list[Span]) -> list[Span]:
    """A second opinion on digit runs no pattern took: libphonenumber's matcher (valid
    numbers of the common regions) on each run of 7+ digits outside the spans found (dates
    and digits inside words, like ``T0001234``, are no candidates)."""
    spans = []
    for m in _CANDIDATE_RE.finditer(text):
        if any(s.start < m.end() and m.start() < s.end for s in found):
            continue
        value = m.group()
        if sum(c.isdigit() for c in value) < 7 or _DATE_RE.match(value.strip()):
            continue
        spans += _matched(text, max(0, m.start() - 1), m.end())
    return spans


def _matched(text: str, start: int, end: int) -> list[Span]:
    import phonenumbers

    window = text[start:end]
    for region in PHONE_REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(window, region, phonenumbers.Leniency.VALID):
            begin, end = start + match.start, start + match.end
            if not _DECIMAL_AFTER.match(text, end):  # 1234567890.12 is an amount
                return [Span("PHONE_NUMBER", begin, end)]
    return []


def _phones(text: str, found: list[Span]) -> list[Span]:
    """Digit runs of 10-15 digits (7 in the ``555-1234`` form) not already another type."""
    spans = []
    for m in PHONE_RE.finditer(text):
        value = m.group().strip()
        digits = re.sub(r"\D", "", value)
        if not 10 <= len(digits) <= 15 or _DATE_RE.match(value):
            continue
        if any(s.start <= m.start() and m.end() <= s.end for s in found):
            continue
        spans.append(Span("PHONE_NUMBER", *m.span()))
    spans += [Span("PHONE_NUMBER", *m.span()) for m in SHORT_PHONE_RE.finditer(text)]
    return spans


def merge_spans(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans, longest first where they overlap; sorted by start."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (-(s.end - s.start), s.start)):
        if all(span.end <= k.start or k.end <= span.start for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def might_hold_digits_pii(text: str) -> bool:
    """Cheap pre-check: at least 7 digits (or digit words) anywhere."""
    return len(_DIGIT_WORD_RE.findall(text)) >= 7
